#pragma once
// DSMC for the spatially inhomogeneous Boltzmann equation (dsmc.space = grid): a Cartesian box of
// cells, free molecular flight with boundaries (periodic, specular, diffuse Maxwell walls with
// accommodation, Maxwellian inflow, outflow), particles migrated to the rank that owns their cell
// (slabs of cells along the axis with the most cells, optionally redrawn by particle count:
// dsmc.balance_every), a CSR cell index (count → exclusive scan →
// scatter; no fixed particles-per-cell capacity), Bird's NTC per cell with the homogeneous engine's
// collision kernels (collision.hpp, detail/ntc.hpp), and cell sampling.
//
// A step: emit at inflow faces → free flight with boundary interactions → migrate (one exchange)
// → cell index → NTC collisions per cell; time averages sample the cells before and after the
// collisions (the flight average of the heat flux and stress to O(dt^2)) (→ every balance_every
// steps: rebalance). Checkpoints (state(), resume()) carry the per-cell state in global cell
// order, so a run may continue on any rank count.
//
// Decomposition independence. Every random draw is a counter-based Philox draw keyed by (seed,
// purpose, step, global particle id or global cell id, block); inserted particles get ids from a
// global counter per step and face (every rank computes the same counts); particles within a cell
// are ordered by id before collisions and sampling; per-cell NTC majorants live with their cell.
// Cell sums are taken sequentially per cell in that order. So particles and fields do not depend on
// the number of ranks or threads (bit for bit; the tests check 1, 2 and 4 ranks).
//
// Units as in the homogeneous engine (dsmc.units): F_N = dsmc.weight physical molecules per
// simulated particle, cell volume V_c; a pair in a cell collides at rate F_N sigma_T g / V_c
// (Bird 1994, ch. 11), so NTC draws N_s N_r (or N_s (N_s - 1)/2) F_N (sigma_T g)_max dt / V_c
// candidates per species pair. With Poisson cell counts (an ideal gas; init places particles that
// way) E[N (N - 1)] = <N>^2, so the collision rate has no 1/N bias.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/comm/migrate.hpp"
#include "kinflow/core/diagnostics.hpp"
#include "kinflow/core/engine_state.hpp"
#include "kinflow/core/kokkos_types.hpp"
#include "kinflow/core/particle_set.hpp"
#include "kinflow/engines/dsmc/options.hpp"

namespace kinflow::dsmc {

namespace detail {
/// NTC per cell for one (cross-section, scattering law); made by make_cell_collider (spatial.cpp).
class CellColliderBase {
  public:
    virtual ~CellColliderBase() = default;
    /// Collide the particles of every local cell once (rows in CSR order: `start`, S species);
    /// returns this rank's collisions, or -1 when a cell would need more than 1000 candidates per
    /// particle (dt far too large). `gid` maps local to global cells.
    virtual std::int64_t collide(ParticleSet& p, const Kokkos::View<std::size_t*, MemSpace>& start,
                                 const Kokkos::View<std::int64_t*, MemSpace>& gid, std::int64_t step, double dt) = 0;
    /// Per local cell and species pair majorants (sigma_T g)_max.
    virtual Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> majorants() const = 0;
    /// Replace them (the cells changed ranks: rebalancing, resume).
    virtual void set_majorants(const Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>& m) = 0;
};
} // namespace detail

/// Cell-averaged fields on every cell of the grid, cell index ix + nx (iy + ny iz); identical on
/// every rank. Vectors have 3 entries per cell. SI (or normalized) units of the deck.
struct CellFields {
    std::int64_t samples = 0; ///< steps averaged (1: instantaneous)
    std::vector<double> number_density, velocity, temperature, temperature_x, temperature_y, temperature_z, pressure,
        heat_flux, shear_stress_xy, particles_per_cell;
};

/// Per-face totals since the flux sampling started (step 0, or average_from).
struct FaceTotals {
    std::array<std::int64_t, 6> inflow{}, outflow{}; ///< simulated particles emitted / deleted
    std::array<std::array<double, 4>, 6> wall{};     ///< momentum (x, y, z) and energy given to the wall (physical)
};

class SpatialEngine {
  public:
    SpatialEngine(const comm::Communicator& comm, const Params& params, std::uint64_t seed);
    ~SpatialEngine();

    /// Initial particles (init = uniform | riemann) on this rank's cells; `p` gets dim = vdim = 3,
    /// ids and species. init = file: `p` holds any block of the file's rows (dim = vdim = 3;
    /// species optional with one species); throws Error (one line) for particles outside the box,
    /// a species index out of range or a missing velocity; the rows move to their cells' ranks.
    void init(ParticleSet& p);
    /// Continue from a checkpoint (output.checkpoint_every, --resume) on any rank count: `p`
    /// holds any rows (dim = vdim = 3, ids, species); they move to the ranks owning their cells.
    /// `state` is what state() returned; per-rank entries (wall and outflow sums, collisions) are
    /// used when present (same rank count), else their sums go to rank 0.
    void resume(ParticleSet& p, const EngineState& state);
    /// Everything beyond the particles a continued run needs to draw what an uninterrupted one
    /// draws: per-cell majorants and time-average sums (in global slab order), counters, slab
    /// boundaries, face totals (collective).
    EngineState state() const;
    /// Advance from step `step` to step + 1 (collective).
    void step(ParticleSet& p, std::int64_t step, double dt);

    /// Particles, collisions, per face inflow/outflow counts and mean wall force and energy flux
    /// per area since the flux sampling started; kinetic energy and momentum (collective).
    Diagnostics diagnostics(const ParticleSet& p) const;
    /// Fields: time averages when steps were averaged (average_from), else from the current
    /// particles (collective).
    CellFields fields(const ParticleSet& p) const;
    FaceTotals face_totals() const; ///< collective

    std::int64_t collisions() const; ///< since init, all ranks (collective)
    /// Cells this rank owns along the decomposition axis: [slab_begin, slab_end).
    int axis() const { return _axis; }
    std::int64_t slab_begin() const { return _s0; }
    std::int64_t slab_end() const { return _s1; }
    std::int64_t n_cells() const { return _ncell_global; }
    std::int64_t n_local_cells() const { return _ncell_local; }
    /// Expected particles emitted per step through face f for species s (E = Gamma A dt / F_N).
    double inflow_per_step(int f, int s, double dt) const;

    /// Load balance (dsmc.balance_every, collective; needs the cell index of the last step): when
    /// the largest rank holds more than balance_threshold x the mean particle count,
    /// redraw the slab boundaries so that every rank's slabs hold about the mean (contiguous
    /// blocks, weighted by each slab's particles) and move particles and per-cell state (NTC
    /// majorants, time-average sums) to their new ranks. Keeps the old slabs unless the largest
    /// load drops. Returns whether slabs moved. Results do not change (draws are keyed by global
    /// cell and particle ids).
    bool rebalance(ParticleSet& p);
    /// Slab boundaries along the decomposition axis: rank r owns [b[r], b[r+1]).
    const std::vector<std::int64_t>& slab_bounds() const { return _bounds; }
    std::int64_t rebalances() const { return _rebalances; } ///< since init
    /// Largest rank's particles / mean before and after the last rebalance.
    double imbalance_before() const { return _imbalance_before; }
    double imbalance_after() const { return _imbalance_after; }

    // Phases of step() (public so that nvcc accepts their kernels).
    void emit_and_move(ParticleSet& p, std::int64_t step, double dt);
    /// After the flight: rows owned by another rank (dest(i) != rank) go there in one exchange
    /// (only those rows are packed), received rows are appended; rows deleted or sent away are
    /// marked dest = -1 and dropped by index() (collective).
    void exchange(ParticleSet& p, const comm::RankView& dest);
    void index(ParticleSet& p);
    void collide(ParticleSet& p, std::int64_t step, double dt);
    void sample(const ParticleSet& p, const Kokkos::View<double**, Kokkos::LayoutRight, MemSpace>& sums) const;
    /// Send every row to the rank owning its cell (collective; any layout in).
    void to_owners(ParticleSet& p);
    /// init = file: check the rows (see init), take ids, counts and the next id from them.
    void init_from_file(ParticleSet& p);

  private:
    void reset_totals(); ///< counters, time averages and face sums to zero (init)
    /// Take slab boundaries `b` (P + 1 entries): owned slabs, local cells, global cell ids.
    void set_slabs(const std::vector<std::int64_t>& b);
    /// Per-cell state of every cell in slab order (the concatenation of the ranks' local cells):
    /// majorants (T per cell) then time-average sums (kSums per cell), on every rank (collective).
    std::vector<double> gather_cell_state() const;
    /// Take this rank's cells' rows of gather_cell_state()'s layout.
    void scatter_cell_state(const std::vector<double>& all);
    /// Rows [0, p.size()) of p followed by `extra` rows to fill, in the storage p occupies when it
    /// has room (else fresh storage, p's rows copied).
    ParticleSet with_room(const ParticleSet& p, std::size_t extra);

    comm::Communicator _comm;
    Params _params;
    GridParams _g;
    std::uint64_t _seed;
    int _axis = 0, _ax_b = 1, _ax_c = 2; ///< decomposition axis (slowest local index) and the other two
    std::int64_t _s0 = 0, _s1 = 0;       ///< owned slabs along _axis
    std::vector<std::int64_t> _bounds;   ///< slab boundaries of every rank (P + 1)
    Kokkos::View<std::int64_t*, MemSpace> _dbounds; ///< the same on the device (owner lookups)
    std::int64_t _rebalances = 0;
    double _imbalance_before = 1.0, _imbalance_after = 1.0;
    std::int64_t _ncell_global = 1, _ncell_local = 0;
    double _dx[3] = {1, 1, 1}, _cell_volume = 1.0;
    std::int64_t _next_id = 0; ///< the next id an inserted particle gets (same on every rank)
    Kokkos::View<std::int64_t*, MemSpace> _gid;   ///< local cell → global cell index
    Kokkos::View<std::size_t*, MemSpace> _start;  ///< CSR: first row of bucket local cell * S + species
    std::unique_ptr<detail::CellColliderBase> _collider;
    ParticleSet _store[2];    ///< full-capacity storage the cell sort gathers into (ping-pong; no fresh pages per step)
    comm::RankView _dest;     ///< rows [0, _dest.extent(0)) deleted or sent away by the last flight (dest < 0), dropped by index()
    // Grow-only per-step scratch (fresh pages every step cost a fifth of a step): flight times of
    // emitted rows, destinations, cell index (bucket, CSR start, cursors, order), exchange buffers.
    ScalarView _tau;
    comm::RankView _dest_rows, _pack_rank;
    Kokkos::View<std::size_t*, MemSpace> _bucket, _start_rows, _cursor, _order, _leavers;
    VectorView _pack_x;
    Kokkos::View<std::int64_t**, Kokkos::LayoutRight, MemSpace> _pack_i;
    std::vector<std::uint64_t> _send_words, _recv_words;
    std::int64_t _n_global = 0;
    Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> _acc; ///< time-averaged cell sums
    std::int64_t _samples = 0; ///< sample sets in _acc (two per averaged step: before and after collisions)
    Kokkos::View<double[6][4], MemSpace> _wall;        ///< this rank's wall momentum and energy (physical)
    Kokkos::View<std::int64_t[6], MemSpace> _outflow; ///< this rank's deleted particles per face
    std::array<std::int64_t, 6> _inflow{};            ///< global emitted particles per face
    std::int64_t _collisions = 0;                     ///< this rank's
    double _flux_time = 0.0;                          ///< time over which the face totals were summed
};

} // namespace kinflow::dsmc
