#include "kinflow/io/xdmf.hpp"

#include <algorithm>
#include <cstdint>
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

DatasetInfo inspect(hid_t group, const char* name, int max_rank = 2) {
    DatasetInfo d;
    if (H5Lexists(group, name, H5P_DEFAULT) <= 0) return d;
    Handle dset(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose, std::string("open ") + name);
    Handle space(H5Dget_space(dset), H5Sclose, "H5Dget_space");
    Handle type(H5Dget_type(dset), H5Tclose, "H5Dget_type");
    const int rank = H5Sget_simple_extent_ndims(space);
    KINFLOW_REQUIRE(rank >= 1 && rank <= max_rank, "dataset " << name << " has rank " << rank);
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
    for (std::size_t k = 1; k < d.dims.size(); ++k) os << " " << d.dims[k];
    os << "\" NumberType=\"" << (d.integer ? "Int" : "Float") << "\" Precision=\"" << d.precision
       << "\" Format=\"HDF\">" << file << ":" << path << "</DataItem>";
    return os.str();
}

/// The cell fields of a spatial engine (/grid, /fields/NNNNNN) as a temporal collection of
/// 3DCoRectMesh grids (nodes nz+1 x ny+1 x nx+1, origin and spacing in z, y, x order as XDMF
/// orders them) with cell-centred attributes: scalars [nz, ny, nx], vectors [nz, ny, nx, 3].
void write_fields_collection(hid_t file, const std::string& name, std::ostream& os) {
    double lo[3], hi[3];
    std::int64_t cells[3];
    const auto read = [&](const char* path, hid_t type, void* out) {
        Handle d(H5Dopen2(file, path, H5P_DEFAULT), H5Dclose, std::string("open ") + path);
        h5check_status(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), std::string("read ") + path);
    };
    read("/grid/lo", H5T_NATIVE_DOUBLE, lo);
    read("/grid/hi", H5T_NATIVE_DOUBLE, hi);
    read("/grid/cells", H5T_NATIVE_INT64, cells);
    std::ostringstream origin, spacing;
    origin.precision(17);
    spacing.precision(17);
    for (int k = 2; k >= 0; --k) {
        origin << lo[k] << (k > 0 ? " " : "");
        spacing << (hi[k] - lo[k]) / static_cast<double>(cells[k]) << (k > 0 ? " " : "");
    }
    os << "    <Grid Name=\"fields\" GridType=\"Collection\" CollectionType=\"Temporal\">\n";
    for (const auto& out : list_group(file, "fields")) {
        const std::string base = "/fields/" + out;
        Handle g(H5Gopen2(file, base.c_str(), H5P_DEFAULT), H5Gclose, "open " + base);
        os << "      <Grid Name=\"" << out << "\" GridType=\"Uniform\">\n"
           << "        <Time Value=\"" << format_number(read_attr_double(g, "time")) << "\"/>\n"
           << "        <Topology TopologyType=\"3DCoRectMesh\" Dimensions=\"" << cells[2] + 1 << " " << cells[1] + 1 << " "
           << cells[0] + 1 << "\"/>\n"
           << "        <Geometry GeometryType=\"ORIGIN_DXDYDZ\">\n"
           << "          <DataItem Dimensions=\"3\" NumberType=\"Float\" Precision=\"8\" Format=\"XML\">" << origin.str()
           << "</DataItem>\n"
           << "          <DataItem Dimensions=\"3\" NumberType=\"Float\" Precision=\"8\" Format=\"XML\">" << spacing.str()
           << "</DataItem>\n        </Geometry>\n";
        for (const auto& field : list_group(file, base.c_str())) {
            const DatasetInfo d = inspect(g, field.c_str(), 4);
            const bool vector = d.dims.size() == 4;
            os << "        <Attribute Name=\"" << field << "\" AttributeType=\"" << (vector ? "Vector" : "Scalar")
               << "\" Center=\"Cell\">\n          " << data_item(d, name, base + "/" + field) << "\n        </Attribute>\n";
        }
        os << "      </Grid>\n";
    }
    os << "    </Grid>\n";
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
    const bool fields = H5Lexists(file, "fields", H5P_DEFAULT) > 0 && H5Lexists(file, "grid", H5P_DEFAULT) > 0;
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
       << "<!-- kinflow: the snapshots of " << name << " as a temporal collection of point sets"
       << (fields ? ", the cell fields as one of cell grids" : "") << " -->\n"
       << "<Xdmf Version=\"3.0\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n"
       << "  <Domain>\n";
    if (fields) write_fields_collection(file, name, os);
    if (!fields || !snaps.empty()) os << "    <Grid Name=\"particles\" GridType=\"Collection\" CollectionType=\"Temporal\">\n";
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
    if (!fields || !snaps.empty()) os << "    </Grid>\n";
    os << "  </Domain>\n</Xdmf>\n";

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
