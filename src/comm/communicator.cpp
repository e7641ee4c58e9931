#include "kinflow/comm/communicator.hpp"

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "kinflow/core/error.hpp"

namespace kinflow::comm {

namespace {
void check(int rc, const char* what) {
    if (rc != MPI_SUCCESS) throw Error(std::string("MPI error in ") + what);
}

template <class T>
std::vector<T> allgatherv_impl(MPI_Comm comm, int size, const std::vector<T>& local, MPI_Datatype type) {
    int n = static_cast<int>(local.size());
    std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
    check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm), "MPI_Allgather");
    std::exclusive_scan(counts.begin(), counts.end(), displs.begin(), 0);
    std::vector<T> out(static_cast<std::size_t>(displs.back() + counts.back()));
    check(MPI_Allgatherv(local.data(), n, type, out.data(), counts.data(), displs.data(), type, comm), "MPI_Allgatherv");
    return out;
}

template <class T>
std::vector<T> gatherv_impl(MPI_Comm comm, int rank, int size, const std::vector<T>& local, MPI_Datatype type, int root) {
    int n = static_cast<int>(local.size());
    std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
    check(MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, root, comm), "MPI_Gather");
    std::vector<T> out;
    if (rank == root) {
        std::exclusive_scan(counts.begin(), counts.end(), displs.begin(), 0);
        out.resize(static_cast<std::size_t>(displs.back() + counts.back()));
    }
    check(MPI_Gatherv(local.data(), n, type, out.data(), counts.data(), displs.data(), type, root, comm), "MPI_Gatherv");
    return out;
}
} // namespace

std::string mpi_library_version() {
    char buf[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    check(MPI_Get_library_version(buf, &len), "MPI_Get_library_version");
    std::string v(buf, static_cast<std::size_t>(len));
    v = v.substr(0, v.find('\n'));
    while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.pop_back();
    return v;
}

Environment::Environment(int& argc, char**& argv, bool initialise) : _initialised(initialise) {
    if (!initialise) return;
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
}

Environment::~Environment() {
    if (!_initialised) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

int launched_ranks() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
        if (const char* v = std::getenv(var)) {
            char* end = nullptr;
            const long n = std::strtol(v, &end, 10);
            if (end != v && n >= 1) return static_cast<int>(std::min<long>(n, 1 << 30));
        }
    }
    return 1;
}

Communicator::Communicator(MPI_Comm comm) : _comm(comm) {
    if (comm == MPI_COMM_NULL) return; // local(): rank 0 of 1
    check(MPI_Comm_rank(comm, &_rank), "MPI_Comm_rank");
    check(MPI_Comm_size(comm, &_size), "MPI_Comm_size");
}

Communicator Communicator::world() { return Communicator(MPI_COMM_WORLD); }
Communicator Communicator::self() { return Communicator(MPI_COMM_SELF); }
Communicator Communicator::local() { return Communicator(MPI_COMM_NULL); }

void Communicator::barrier() const {
    if (is_local()) return;
    check(MPI_Barrier(_comm), "MPI_Barrier");
}

double Communicator::sum(double v) const {
    if (is_local()) return v;
    double out = 0;
    check(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, _comm), "MPI_Allreduce");
    return out;
}

std::int64_t Communicator::sum(std::int64_t v) const {
    if (is_local()) return v;
    std::int64_t out = 0;
    check(MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_SUM, _comm), "MPI_Allreduce");
    return out;
}

double Communicator::max(double v) const {
    if (is_local()) return v;
    double out = 0;
    check(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, _comm), "MPI_Allreduce");
    return out;
}

double Communicator::min(double v) const {
    if (is_local()) return v;
    double out = 0;
    check(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MIN, _comm), "MPI_Allreduce");
    return out;
}

std::int64_t Communicator::max(std::int64_t v) const {
    if (is_local()) return v;
    std::int64_t out = 0;
    check(MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_MAX, _comm), "MPI_Allreduce");
    return out;
}

void Communicator::sum(std::vector<double>& v) const {
    if (is_local()) return;
    check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM, _comm), "MPI_Allreduce");
}

bool Communicator::any(bool v) const {
    if (is_local()) return v;
    int in = v ? 1 : 0, out = 0;
    check(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LOR, _comm), "MPI_Allreduce");
    return out != 0;
}

std::int64_t Communicator::exscan(std::int64_t v) const {
    if (is_local()) return 0;
    std::int64_t out = 0;
    check(MPI_Exscan(&v, &out, 1, MPI_INT64_T, MPI_SUM, _comm), "MPI_Exscan");
    return _rank == 0 ? 0 : out; // MPI leaves rank 0's result undefined
}

std::vector<double> Communicator::allgatherv(const std::vector<double>& local) const {
    if (is_local()) return local;
    return allgatherv_impl(_comm, _size, local, MPI_DOUBLE);
}
std::vector<std::int64_t> Communicator::allgatherv(const std::vector<std::int64_t>& local) const {
    if (is_local()) return local;
    return allgatherv_impl(_comm, _size, local, MPI_INT64_T);
}
std::vector<double> Communicator::gatherv(const std::vector<double>& local, int root) const {
    if (is_local()) return local;
    return gatherv_impl(_comm, _rank, _size, local, MPI_DOUBLE, root);
}
std::vector<std::int64_t> Communicator::gatherv(const std::vector<std::int64_t>& local, int root) const {
    if (is_local()) return local;
    return gatherv_impl(_comm, _rank, _size, local, MPI_INT64_T, root);
}

void Communicator::reduce_scatter_sum(const double* in, double* out, const std::vector<int>& counts) const {
    KINFLOW_REQUIRE(static_cast<int>(counts.size()) == _size, "reduce_scatter_sum: one count per rank");
    if (is_local()) {
        std::copy(in, in + counts[0], out);
        return;
    }
    check(MPI_Reduce_scatter(in, out, counts.data(), MPI_DOUBLE, MPI_SUM, _comm), "MPI_Reduce_scatter");
}

void Communicator::allgatherv_in_place(double* buf, const std::vector<int>& counts, const std::vector<int>& displs) const {
    KINFLOW_REQUIRE(static_cast<int>(counts.size()) == _size && displs.size() == counts.size(),
                    "allgatherv_in_place: one count and displacement per rank");
    if (is_local()) return;
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts.data(), displs.data(), MPI_DOUBLE, _comm),
          "MPI_Allgatherv");
}

void Communicator::broadcast(std::string& s, int root) const {
    if (is_local()) return;
    long n = static_cast<long>(s.size());
    check(MPI_Bcast(&n, 1, MPI_LONG, root, _comm), "MPI_Bcast");
    s.resize(static_cast<std::size_t>(n));
    check(MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, root, _comm), "MPI_Bcast");
}

void Communicator::broadcast(std::vector<double>& v, int root) const {
    if (is_local()) return;
    long n = static_cast<long>(v.size());
    check(MPI_Bcast(&n, 1, MPI_LONG, root, _comm), "MPI_Bcast");
    v.resize(static_cast<std::size_t>(n));
    check(MPI_Bcast(v.data(), static_cast<int>(n), MPI_DOUBLE, root, _comm), "MPI_Bcast");
}

void Communicator::abort(int code) const {
    if (is_local()) std::exit(code);
    MPI_Abort(_comm, code);
    std::abort();
}

} // namespace kinflow::comm
