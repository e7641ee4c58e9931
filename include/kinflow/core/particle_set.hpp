#pragma once
// Particles of one rank as structure-of-arrays Kokkos Views (LayoutRight, so rows go to HDF5
// and LibTorch without copies on the host).
#include <cstdint>
#include <string>

#include "kinflow/core/kokkos_types.hpp"

namespace kinflow {

/// The particles a rank owns. `position` is [n, dim]; `velocity` [n, vdim] when vdim > 0;
/// `id` holds global particle ids; `species` is allocated when with_species.
struct ParticleSet {
    int dim = 0;
    int vdim = 0;
    bool with_species = false;
    std::int64_t n_global = 0; ///< total particles over all ranks
    VectorView position;
    VectorView velocity;
    IdView id;
    SpeciesView species;

    /// Local particle count.
    std::size_t size() const { return id.extent(0); }
    bool has_velocity() const { return vdim > 0; }
    bool has_species() const { return with_species; }

    /// Allocate for n_local particles (contents zero).
    void allocate(std::size_t n_local, int dim_, int vdim_, bool with_species_, const std::string& label = "kinflow") {
        dim = dim_;
        vdim = vdim_;
        with_species = with_species_;
        position = VectorView(label + "::position", n_local, static_cast<std::size_t>(dim));
        velocity = vdim > 0 ? VectorView(label + "::velocity", n_local, static_cast<std::size_t>(vdim)) : VectorView();
        id = IdView(label + "::id", n_local);
        species = with_species_ ? SpeciesView(label + "::species", n_local) : SpeciesView();
    }
};

} // namespace kinflow
