#include "kinflow/comm/migrate.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <mpi.h>

#include "kinflow/comm/decomposition.hpp"
#include "kinflow/core/error.hpp"

namespace kinflow::comm {

namespace {

void check(int rc, const char* what) {
    if (rc != MPI_SUCCESS)
        throw Error(std::string("MPI error in ") + what);
}

/// v <- rows of v moved to where(i) (a permutation).
void permute_rows(VectorView& v, const Kokkos::View<std::size_t*, MemSpace>& where) {
    if (v.data() == nullptr)
        return;
    VectorView out(v.label(), v.extent(0), v.extent(1));
    const int cols = static_cast<int>(v.extent(1));
    const VectorView in = v;
    Kokkos::parallel_for(
        "kinflow::comm::to_blocks::permute", Kokkos::RangePolicy<ExecSpace>(0, v.extent(0)),
        KOKKOS_LAMBDA(const std::size_t i) {
            for (int c = 0; c < cols; ++c)
                out(where(i), c) = in(i, c);
        });
    v = out;
}

} // namespace

std::size_t exchange_records(const Communicator& comm, const std::vector<std::uint64_t>& send,
                             const std::vector<std::int64_t>& rows, int words, std::vector<std::uint64_t>& recv) {
    const int P = comm.size();
    KINFLOW_REQUIRE(rows.size() == static_cast<std::size_t>(P), "comm::exchange_records: " << rows.size()
                                                                    << " row counts for " << P << " ranks");
    std::vector<std::int64_t> recv_rows(static_cast<std::size_t>(P), 0);
    check(MPI_Alltoall(rows.data(), 1, MPI_INT64_T, recv_rows.data(), 1, MPI_INT64_T, comm.raw()), "MPI_Alltoall");
    std::vector<int> sc(static_cast<std::size_t>(P)), sd(sc), rc(sc), rd(sc);
    std::int64_t so = 0, ro = 0;
    for (std::size_t q = 0; q < static_cast<std::size_t>(P); ++q) {
        const std::int64_t a = rows[q] * words, b = recv_rows[q] * words;
        KINFLOW_REQUIRE(so + a <= INT_MAX && ro + b <= INT_MAX, "comm::exchange_records: more than 2^31 words to or from one rank");
        sc[q] = static_cast<int>(a);
        sd[q] = static_cast<int>(so);
        rc[q] = static_cast<int>(b);
        rd[q] = static_cast<int>(ro);
        so += a;
        ro += b;
    }
    KINFLOW_REQUIRE(static_cast<std::size_t>(so) <= send.size(),
                    "comm::exchange_records: " << send.size() << " words for " << so << " to send");
    recv.resize(static_cast<std::size_t>(ro));
    check(MPI_Alltoallv(send.data(), sc.data(), sd.data(), MPI_UINT64_T, recv.data(), rc.data(), rd.data(),
                        MPI_UINT64_T, comm.raw()),
          "MPI_Alltoallv");
    return static_cast<std::size_t>(ro / words);
}

void migrate(const Communicator& comm, ParticleSet& p, const RankView& dest) {
    const int P = comm.size();
    const std::size_t n = p.size();
    KINFLOW_REQUIRE(dest.extent(0) == n,
                    "comm::migrate: " << dest.extent(0) << " destinations for " << n << " particles");
    // The received rows may overwrite p's own storage when nothing else holds it and the count
    // stays (the DSMC shuffle): every row is packed before any is unpacked. Saves fresh pages
    // (page faults and zeroing cost more than the copy on these machines).
    const bool alias_in = p.position.data() != nullptr && p.position.data() == p.velocity.data();
    const bool sole = p.velocity.use_count() <= (alias_in ? 2 : 1) && (alias_in || p.position.use_count() <= 1) &&
                      p.id.use_count() <= 1 && p.species.use_count() <= 1;
    auto hdest = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dest);
    bool bad = false;
    for (std::size_t i = 0; i < n; ++i)
        bad = bad || hdest(i) < 0 || hdest(i) >= P;
    if (comm.any(bad))
        throw Error("comm::migrate: destination rank outside [0, " + std::to_string(P) + ")");
    if (P == 1)
        return; // everything stays, in its order

    // Stable order by destination (counting sort), so rows keep their local order per source.
    std::vector<std::int64_t> send_rows(static_cast<std::size_t>(P), 0);
    for (std::size_t i = 0; i < n; ++i)
        ++send_rows[static_cast<std::size_t>(hdest(i))];
    std::vector<std::size_t> offset(static_cast<std::size_t>(P), 0), order(n);
    for (int q = 1; q < P; ++q)
        offset[q] = offset[q - 1] + static_cast<std::size_t>(send_rows[q - 1]);
    for (std::size_t i = 0; i < n; ++i)
        order[offset[static_cast<std::size_t>(hdest(i))]++] = i;
    // One record per particle, packed once into one buffer ordered by destination, one exchange:
    // 64-bit words [velocity (vdim) | position (dim; not when it aliases velocity) | id | species].
    const bool alias = p.position.data() != nullptr && p.position.data() == p.velocity.data();
    const int nv = p.vdim > 0 ? p.vdim : 0;
    const int nx = !alias && p.dim > 0 && p.position.data() != nullptr ? p.dim : 0;
    const int ns = p.has_species() ? 1 : 0;
    const int W = nv + nx + 1 + ns; // words per record
    auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.velocity);
    auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.position);
    auto hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
    auto hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.species);
    static std::vector<std::uint64_t> send, recv; // reused between calls (MPI is called from one thread)
    send.resize(n * static_cast<std::size_t>(W));
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = order[k];
        std::uint64_t* r = &send[k * static_cast<std::size_t>(W)];
        if (nv > 0)
            std::memcpy(r, hv.data() + i * static_cast<std::size_t>(nv), sizeof(double) * static_cast<std::size_t>(nv));
        if (nx > 0)
            std::memcpy(r + nv, hx.data() + i * static_cast<std::size_t>(nx),
                        sizeof(double) * static_cast<std::size_t>(nx));
        std::memcpy(r + nv + nx, &hi(i), sizeof(std::int64_t));
        if (ns) {
            const std::int64_t sp = hs(i);
            std::memcpy(r + nv + nx + 1, &sp, sizeof sp);
        }
    }
    const std::size_t n_new = exchange_records(comm, send, send_rows, W, recv);
    ParticleSet out = p; // same metadata; the Views are replaced below unless p's storage is reused
    if (!(sole && n_new == n)) {
        const auto no_init = [](const std::string& label) { return Kokkos::view_alloc(Kokkos::WithoutInitializing, label); };
        const auto alloc = [&](const VectorView& like, int cols) {
            return VectorView(no_init(like.label()), n_new, static_cast<std::size_t>(cols));
        };
        if (nv > 0)
            out.velocity = alloc(p.velocity, nv);
        if (nx > 0)
            out.position = alloc(p.position, nx);
        if (alias)
            out.position = out.velocity;
        out.id = IdView(no_init(p.id.label()), n_new);
        if (ns)
            out.species = SpeciesView(no_init(p.species.label()), n_new);
    }
    auto gv = Kokkos::create_mirror_view(out.velocity);
    auto gx = Kokkos::create_mirror_view(out.position);
    auto gi = Kokkos::create_mirror_view(out.id);
    auto gs = Kokkos::create_mirror_view(out.species);
    for (std::size_t k = 0; k < n_new; ++k) {
        const std::uint64_t* r = &recv[k * static_cast<std::size_t>(W)];
        if (nv > 0)
            std::memcpy(gv.data() + k * static_cast<std::size_t>(nv), r, sizeof(double) * static_cast<std::size_t>(nv));
        if (nx > 0)
            std::memcpy(gx.data() + k * static_cast<std::size_t>(nx), r + nv,
                        sizeof(double) * static_cast<std::size_t>(nx));
        std::memcpy(&gi(k), r + nv + nx, sizeof(std::int64_t));
        if (ns) {
            std::int64_t sp = 0;
            std::memcpy(&sp, r + nv + nx + 1, sizeof sp);
            gs(k) = static_cast<typename SpeciesView::non_const_value_type>(sp);
        }
    }
    if (nv > 0)
        Kokkos::deep_copy(out.velocity, gv);
    if (nx > 0)
        Kokkos::deep_copy(out.position, gx);
    Kokkos::deep_copy(out.id, gi);
    if (ns)
        Kokkos::deep_copy(out.species, gs);
    p = out;
}

void to_blocks(const Communicator& comm, ParticleSet& p) {
    const int P = comm.size();
    const std::int64_t n_global = p.n_global;
    const auto n_all = comm.sum(static_cast<std::int64_t>(p.size()));
    if (n_all != n_global) {
        throw Error("comm::to_blocks: " + std::to_string(n_all) +
                    " particles over all ranks but n_global = " + std::to_string(n_global));
    }
    // Owner of an id: the rank whose block [begin, end) holds it (blocks are contiguous, increasing).
    Kokkos::View<std::int64_t*, Kokkos::LayoutRight, MemSpace> starts("kinflow::comm::to_blocks::starts",
                                                                      static_cast<std::size_t>(P) + 1);
    auto hs = Kokkos::create_mirror_view(starts);
    for (int r = 0; r < P; ++r)
        hs(r) = BlockDecomposition::make(n_global, P, r).begin;
    hs(P) = n_global;
    Kokkos::deep_copy(starts, hs);

    const std::size_t n = p.size();
    RankView dest("kinflow::comm::to_blocks::dest", n);
    auto id = p.id;
    std::int64_t bad = 0;
    Kokkos::parallel_reduce(
        "kinflow::comm::to_blocks::owner", Kokkos::RangePolicy<ExecSpace>(0, n),
        KOKKOS_LAMBDA(const std::size_t i, std::int64_t& nbad) {
            const std::int64_t g = id(i);
            if (g < 0 || g >= n_global) {
                ++nbad;
                dest(i) = 0;
                return;
            }
            int lo = 0, hi = P; // starts(lo) <= g < starts(hi); empty blocks are skipped by the search
            while (hi - lo > 1) {
                const int mid = (lo + hi) / 2;
                if (starts(mid) <= g)
                    lo = mid;
                else
                    hi = mid;
            }
            dest(i) = lo;
        },
        Kokkos::Sum<std::int64_t>(bad));
    if (comm.any(bad > 0))
        throw Error("comm::to_blocks: particle id outside [0, n_global)");
    migrate(comm, p, dest);

    // Local order by id: the ids of this rank are a permutation of [begin, end), so row i goes to
    // id(i) - begin (a scatter to distinct places, checked first).
    const auto dec = BlockDecomposition::make(n_global, P, comm.rank());
    const std::size_t m = p.size();
    const std::int64_t first = dec.begin;
    Kokkos::View<int*, MemSpace> seen("kinflow::comm::to_blocks::seen", m);
    id = p.id;
    std::int64_t dup = 0;
    if (static_cast<std::int64_t>(m) == dec.n_local()) {
        Kokkos::parallel_reduce(
            "kinflow::comm::to_blocks::check", Kokkos::RangePolicy<ExecSpace>(0, m),
            KOKKOS_LAMBDA(const std::size_t i, std::int64_t& ndup) {
                // A duplicate id shows as a slot hit twice; the count does not depend on the order.
                if (Kokkos::atomic_fetch_add(&seen(static_cast<std::size_t>(id(i) - first)), 1) != 0)
                    ++ndup;
            },
            Kokkos::Sum<std::int64_t>(dup));
    } else {
        dup = 1;
    }
    if (comm.any(dup > 0))
        throw Error("comm::to_blocks: particle ids are not a permutation of [0, n_global)");

    Kokkos::View<std::size_t*, MemSpace> where("kinflow::comm::to_blocks::where", m);
    Kokkos::parallel_for(
        "kinflow::comm::to_blocks::slot", Kokkos::RangePolicy<ExecSpace>(0, m),
        KOKKOS_LAMBDA(const std::size_t i) { where(i) = static_cast<std::size_t>(id(i) - first); });
    const bool alias = p.position.data() != nullptr && p.position.data() == p.velocity.data();
    permute_rows(p.velocity, where);
    if (alias)
        p.position = p.velocity;
    else
        permute_rows(p.position, where);
    {
        IdView out(p.id.label(), m);
        Kokkos::parallel_for(
            "kinflow::comm::to_blocks::permute_id", Kokkos::RangePolicy<ExecSpace>(0, m),
            KOKKOS_LAMBDA(const std::size_t i) { out(where(i)) = id(i); });
        p.id = out;
    }
    if (p.has_species()) {
        SpeciesView out(p.species.label(), m);
        auto sp = p.species;
        Kokkos::parallel_for(
            "kinflow::comm::to_blocks::permute_species", Kokkos::RangePolicy<ExecSpace>(0, m),
            KOKKOS_LAMBDA(const std::size_t i) { out(where(i)) = sp(i); });
        p.species = out;
    }
}

bool in_block_order(const Communicator& comm, const ParticleSet& p) {
    const auto dec = BlockDecomposition::make(p.n_global, comm.size(), comm.rank());
    bool ok = static_cast<std::int64_t>(p.size()) == dec.n_local();
    if (ok) {
        auto id = p.id;
        const std::int64_t first = dec.begin;
        std::int64_t wrong = 0;
        Kokkos::parallel_reduce(
            "kinflow::comm::in_block_order", Kokkos::RangePolicy<ExecSpace>(0, p.size()),
            KOKKOS_LAMBDA(const std::size_t i, std::int64_t& nw) {
                if (id(i) != first + static_cast<std::int64_t>(i))
                    ++nw;
            },
            Kokkos::Sum<std::int64_t>(wrong));
        ok = wrong == 0;
    }
    return !comm.any(!ok);
}

} // namespace kinflow::comm
