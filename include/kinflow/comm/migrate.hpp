#pragma once
// Particle migration between ranks (Cabana's Distributor pattern): an engine fills one
// destination rank per particle, comm/ moves the rows. Each particle's record (every field) is
// packed once into one host buffer ordered by destination; one MPI_Alltoallv moves them all.
#include <cstdint>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/communicator.hpp"
#include "kinflow/core/particle_set.hpp"

namespace kinflow::comm {

/// Destination rank per local particle.
using RankView = Kokkos::View<int*, Kokkos::LayoutRight, MemSpace>;

/// One exchange of fixed-size records (`words` 64-bit words each), collective: `send` holds
/// `rows[q]` records for rank q, grouped by rank in rank order; `recv` (resized; its capacity is
/// reused between calls) gets the records sent to this rank, grouped by source rank in rank
/// order. Returns the number of records received. Throws Error past 2^31 words per rank.
std::size_t exchange_records(const Communicator& comm, const std::vector<std::uint64_t>& send,
                             const std::vector<std::int64_t>& rows, int words, std::vector<std::uint64_t>& recv);

/// Send local particle i to rank dest(i) (collective). Afterwards `p` holds the particles sent
/// to this rank, ordered by source rank and, within one source, in the source's local order, so
/// the result is a deterministic function of the inputs. Every field present (position,
/// velocity, id, species) travels; a position View that aliases the velocity View (homogeneous
/// DSMC stores velocities as positions) stays an alias. `n_global` is unchanged. Throws Error for
/// a destination outside [0, size).
void migrate(const Communicator& comm, ParticleSet& p, const RankView& dest);

/// Send every particle to the rank that owns its id in BlockDecomposition::make(n_global, size,
/// rank) and order each rank's rows by id (collective): the layout SnapshotWriter and
/// ordered_sum need. Throws Error unless the ids over all ranks are a permutation of
/// [0, n_global).
void to_blocks(const Communicator& comm, ParticleSet& p);

/// True when every rank holds exactly its block of ids, in order (collective).
bool in_block_order(const Communicator& comm, const ParticleSet& p);

} // namespace kinflow::comm
