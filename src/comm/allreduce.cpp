#include "kinflow/comm/allreduce.hpp"

#include <climits>

#include "kinflow/core/error.hpp"

namespace kinflow::comm {

namespace {
void check(int rc, const char* what) {
    if (rc != MPI_SUCCESS) throw Error(std::string("MPI error in ") + what);
}

// MPI counts are int: large buffers go in pieces of at most INT_MAX elements.
template <class T, class Op>
void in_pieces(T* data, std::size_t n, Op&& op) {
    constexpr std::size_t kMax = static_cast<std::size_t>(INT_MAX);
    for (std::size_t off = 0; off < n; off += kMax) {
        const std::size_t len = n - off < kMax ? n - off : kMax;
        op(data + off, static_cast<int>(len));
    }
}

template <class T>
void allreduce_impl(MPI_Comm comm, T* data, std::size_t n, MPI_Datatype type) {
    in_pieces(data, n, [&](T* p, int len) { check(MPI_Allreduce(MPI_IN_PLACE, p, len, type, MPI_SUM, comm), "MPI_Allreduce"); });
}

template <class T>
void broadcast_impl(MPI_Comm comm, T* data, std::size_t n, MPI_Datatype type, int root) {
    in_pieces(data, n, [&](T* p, int len) { check(MPI_Bcast(p, len, type, root, comm), "MPI_Bcast"); });
}
} // namespace

void allreduce_sum(const Communicator& comm, float* data, std::size_t n) {
    if (comm.size() > 1) allreduce_impl(comm.raw(), data, n, MPI_FLOAT);
}
void allreduce_sum(const Communicator& comm, double* data, std::size_t n) {
    if (comm.size() > 1) allreduce_impl(comm.raw(), data, n, MPI_DOUBLE);
}
void broadcast(const Communicator& comm, float* data, std::size_t n, int root) {
    if (comm.size() > 1) broadcast_impl(comm.raw(), data, n, MPI_FLOAT, root);
}
void broadcast(const Communicator& comm, double* data, std::size_t n, int root) {
    if (comm.size() > 1) broadcast_impl(comm.raw(), data, n, MPI_DOUBLE, root);
}
void broadcast(const Communicator& comm, std::int64_t* data, std::size_t n, int root) {
    if (comm.size() > 1) broadcast_impl(comm.raw(), data, n, MPI_INT64_T, root);
}

} // namespace kinflow::comm
