#include "kinflow/io/xdmf.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "kinflow/core/error.hpp"
#include "kinflow/core/options.hpp"
#include "kinflow/io/hdf5.hpp"

namespace kinflow::io {

namespace fs = std::filesystem;

namespace {
struct DatasetInfo {
    bool present = false;
    std::vector<hsize_t> dims;
    bool integer = false;
    std::size_t precision = 8;
};

DatasetInfo inspect(hid_t group, const char* name) {
    DatasetInfo d;
    if (H5Lexists(group, name, H5P_DEFAULT) <= 0) return d;
    Handle dset(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose, std::string("open ") + name);
    Handle space(H5Dget_space(dset), H5Sclose, "H5Dget_space");
    Handle type(H5Dget_type(dset), H5Tclose, "H5Dget_type");
    const int rank = H5Sget_simple_extent_ndims(space);
    KINFLOW_REQUIRE(rank == 1 || rank == 2, "dataset " << name << " has rank " << rank);
    d.dims.resize(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space, d.dims.data(), nullptr);
    d.integer = H5Tget_class(type) == H5T_INTEGER;
    d.precision = H5Tget_size(type);
    d.present = true;
    return d;
}

/// <DataItem> for dataset `path` of `file` (an HDF5 reference "file:/path").
std::string data_item(const DatasetInfo& d, const std::string& file, const std::string& path) {
    std::ostringstream os;
    os << "<DataItem Dimensions=\"" << d.dims[0];
    if (d.dims.size() == 2) os << " " << d.dims[1];
    os << "\" NumberType=\"" << (d.integer ? "Int" : "Float") << "\" Precision=\"" << d.precision
       << "\" Format=\"HDF\">" << file << ":" << path << "</DataItem>";
    return os.str();
}
} // namespace

std::string xdmf_path(const std::string& h5_path) {
    for (const char* ext : {".h5", ".hdf5"}) {
        const std::string e = ext;
        if (h5_path.size() > e.size() && h5_path.compare(h5_path.size() - e.size(), e.size(), e) == 0)
            return h5_path.substr(0, h5_path.size() - e.size()) + ".xmf";
    }
    return h5_path + ".xmf";
}

void write_xdmf(const std::string& h5_file, const std::string& final_path) {
    silence_hdf5_errors();
    const hid_t f = H5Fopen(h5_file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) throw Error("XDMF sidecar: cannot open '" + h5_file + "'");
    Handle file(f, H5Fclose, "H5Fopen");
    const std::string name = fs::path(final_path).filename().string();
    const auto snaps = list_group(file, "snapshots");
    hsize_t n_max = 0;
    bool one_d = false;
    for (const auto& snap : snaps) {
        Handle g(H5Gopen2(file, ("/snapshots/" + snap).c_str(), H5P_DEFAULT), H5Gclose, "open snapshot " + snap);
        const DatasetInfo pos = inspect(g, "position");
        if (!pos.present) continue;
        n_max = std::max(n_max, pos.dims[0]);
        one_d = one_d || pos.dims.size() == 1 || pos.dims[1] == 1;
    }
    DatasetInfo zeros;
    if (one_d) {
        if (H5Lexists(file, "xdmf", H5P_DEFAULT) <= 0)
            Handle(H5Gcreate2(file, "xdmf", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create /xdmf");
        if (H5Lexists(file, "xdmf/zeros", H5P_DEFAULT) > 0) H5Ldelete(file, "xdmf/zeros", H5P_DEFAULT);
        const std::vector<double> z(n_max, 0.0);
        Handle space(H5Screate_simple(1, &n_max, nullptr), H5Sclose, "H5Screate_simple");
        Handle d(H5Dcreate2(file, "xdmf/zeros", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Dclose, "create /xdmf/zeros");
        if (n_max > 0) h5check_status(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, z.data()), "write /xdmf/zeros");
        zeros.present = true;
    }
    std::ostringstream os;
    os << "<?xml version=\"1.0\" ?>\n"
       << "<!-- kinflow: the snapshots of " << name << " as a temporal collection of point sets -->\n"
       << "<Xdmf Version=\"3.0\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n"
       << "  <Domain>\n"
       << "    <Grid Name=\"particles\" GridType=\"Collection\" CollectionType=\"Temporal\">\n";
    for (const auto& snap : snaps) {
        const std::string base = "/snapshots/" + snap;
        Handle g(H5Gopen2(file, base.c_str(), H5P_DEFAULT), H5Gclose, "open " + base);
        const DatasetInfo pos = inspect(g, "position");
        if (!pos.present) continue;
        const hsize_t n = pos.dims[0];
        const hsize_t dim = pos.dims.size() == 2 ? pos.dims[1] : 1;
        KINFLOW_REQUIRE(dim >= 1 && dim <= 3, "snapshot " << snap << ": position has " << dim << " columns");
        os << "      <Grid Name=\"" << snap << "\" GridType=\"Uniform\">\n"
           << "        <Time Value=\"" << format_number(read_attr_double(g, "time")) << "\"/>\n"
           << "        <Topology TopologyType=\"Polyvertex\" NumberOfElements=\"" << n << "\" NodesPerElement=\"1\"/>\n";
        if (dim >= 2) {
            os << "        <Geometry GeometryType=\"" << (dim == 3 ? "XYZ" : "XY") << "\">\n          "
               << data_item(pos, name, base + "/position") << "\n        </Geometry>\n";
        } else { // 1D: x from the data, y = z = the first n of /xdmf/zeros
            DatasetInfo x = pos;
            x.dims = {n};
            std::ostringstream zero;
            zero << "<DataItem ItemType=\"HyperSlab\" Dimensions=\"" << n << "\" Type=\"HyperSlab\">"
                 << "<DataItem Dimensions=\"3 1\" Format=\"XML\">0 1 " << n << "</DataItem>"
                 << "<DataItem Dimensions=\"" << n_max << "\" NumberType=\"Float\" Precision=\"8\" Format=\"HDF\">" << name
                 << ":/xdmf/zeros</DataItem></DataItem>";
            os << "        <Geometry GeometryType=\"X_Y_Z\">\n          " << data_item(x, name, base + "/position")
               << "\n          " << zero.str() << "\n          " << zero.str() << "\n        </Geometry>\n";
        }
        for (const char* a : {"velocity", "id", "species"}) {
            const DatasetInfo d = inspect(g, a);
            if (!d.present) continue;
            const bool vector = d.dims.size() == 2 && d.dims[1] > 1;
            os << "        <Attribute Name=\"" << a << "\" AttributeType=\"" << (vector ? "Vector" : "Scalar")
               << "\" Center=\"Node\">\n          " << data_item(d, name, base + "/" + a) << "\n        </Attribute>\n";
        }
        os << "      </Grid>\n";
    }
    os << "    </Grid>\n  </Domain>\n</Xdmf>\n";

    const std::string out = xdmf_path(final_path), tmp = out + ".tmp";
    {
        std::ofstream x(tmp);
        x << os.str();
        if (!x) throw Error("XDMF sidecar: cannot write '" + tmp + "'");
    }
    std::error_code ec;
    fs::rename(tmp, out, ec);
    if (ec) throw Error("XDMF sidecar: cannot rename '" + tmp + "' to '" + out + "': " + ec.message());
}

} // namespace kinflow::io
