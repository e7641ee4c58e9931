#include "kinflow/comm/migrate.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <type_traits>
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

/// Exchange rows of `cols` values of type T: `send` is packed by destination with `send_rows[q]`
/// rows for rank q; returns the received rows packed by source.
template <class T>
std::vector<T> exchange(MPI_Comm comm, MPI_Datatype type, const std::vector<T>& send,
                        const std::vector<std::int64_t>& send_rows, const std::vector<std::int64_t>& recv_rows,
                        int cols) {
    const std::size_t P = send_rows.size();
    std::vector<int> sc(P), sd(P), rc(P), rd(P);
    std::int64_t so = 0, ro = 0;
    for (std::size_t q = 0; q < P; ++q) {
        const std::int64_t s = send_rows[q] * cols, r = recv_rows[q] * cols;
        KINFLOW_REQUIRE(so + s <= INT_MAX && ro + r <= INT_MAX,
                        "comm::migrate: more than 2^31 values per rank and field");
        sc[q] = static_cast<int>(s);
        sd[q] = static_cast<int>(so);
        rc[q] = static_cast<int>(r);
        rd[q] = static_cast<int>(ro);
        so += s;
        ro += r;
    }
    std::vector<T> recv(static_cast<std::size_t>(ro));
    check(MPI_Alltoallv(send.data(), sc.data(), sd.data(), type, recv.data(), rc.data(), rd.data(), type, comm),
          "MPI_Alltoallv");
    return recv;
}

/// Rows of a host mirror of `v` ([n, cols]) in the order `order`, packed.
template <class HostView>
std::vector<typename HostView::non_const_value_type> pack(const HostView& v, const std::vector<std::size_t>& order,
                                                          int cols) {
    std::vector<typename HostView::non_const_value_type> out(order.size() * static_cast<std::size_t>(cols));
    for (std::size_t k = 0; k < order.size(); ++k) {
        for (int c = 0; c < cols; ++c)
            out[k * cols + c] = v.data()[order[k] * cols + c];
    }
    return out;
}

template <class DeviceView, class T>
DeviceView to_device(const std::string& label, const std::vector<T>& data, std::size_t n, int cols) {
    DeviceView out;
    if constexpr (std::is_same<DeviceView, VectorView>::value) {
        out = DeviceView(label, n, static_cast<std::size_t>(cols));
    } else {
        out = DeviceView(label, n);
    }
    auto h = Kokkos::create_mirror_view(out);
    std::copy(data.begin(), data.end(), h.data());
    Kokkos::deep_copy(out, h);
    return out;
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

void migrate(const Communicator& comm, ParticleSet& p, const RankView& dest) {
    const int P = comm.size();
    const std::size_t n = p.size();
    KINFLOW_REQUIRE(dest.extent(0) == n,
                    "comm::migrate: " << dest.extent(0) << " destinations for " << n << " particles");
    auto hdest = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dest);
    bool bad = false;
    for (std::size_t i = 0; i < n; ++i)
        bad = bad || hdest(i) < 0 || hdest(i) >= P;
    if (comm.any(bad))
        throw Error("comm::migrate: destination rank outside [0, " + std::to_string(P) + ")");
    if (P == 1)
        return; // everything stays, in its order

    // Stable order by destination (counting sort), so rows keep their local order per source.
    std::vector<std::int64_t> send_rows(static_cast<std::size_t>(P), 0), recv_rows(static_cast<std::size_t>(P), 0);
    for (std::size_t i = 0; i < n; ++i)
        ++send_rows[static_cast<std::size_t>(hdest(i))];
    std::vector<std::size_t> offset(static_cast<std::size_t>(P), 0), order(n);
    for (int q = 1; q < P; ++q)
        offset[q] = offset[q - 1] + static_cast<std::size_t>(send_rows[q - 1]);
    for (std::size_t i = 0; i < n; ++i)
        order[offset[static_cast<std::size_t>(hdest(i))]++] = i;
    check(MPI_Alltoall(send_rows.data(), 1, MPI_INT64_T, recv_rows.data(), 1, MPI_INT64_T, comm.raw()), "MPI_Alltoall");
    std::size_t n_new = 0;
    for (auto r : recv_rows)
        n_new += static_cast<std::size_t>(r);

    const bool alias = p.position.data() != nullptr && p.position.data() == p.velocity.data();
    ParticleSet out = p; // same metadata; the Views are replaced below
    if (p.vdim > 0) {
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.velocity);
        const auto recv = exchange(comm.raw(), MPI_DOUBLE, pack(h, order, p.vdim), send_rows, recv_rows, p.vdim);
        out.velocity = to_device<VectorView>(p.velocity.label(), recv, n_new, p.vdim);
    }
    if (alias) {
        out.position = out.velocity;
    } else if (p.dim > 0 && p.position.data() != nullptr) {
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.position);
        const auto recv = exchange(comm.raw(), MPI_DOUBLE, pack(h, order, p.dim), send_rows, recv_rows, p.dim);
        out.position = to_device<VectorView>(p.position.label(), recv, n_new, p.dim);
    }
    {
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
        const auto recv = exchange(comm.raw(), MPI_INT64_T, pack(h, order, 1), send_rows, recv_rows, 1);
        out.id = to_device<IdView>(p.id.label(), recv, n_new, 1);
    }
    if (p.has_species()) {
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.species);
        const auto recv = exchange(comm.raw(), MPI_INT32_T, pack(h, order, 1), send_rows, recv_rows, 1);
        out.species = to_device<SpeciesView>(p.species.label(), recv, n_new, 1);
    }
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
