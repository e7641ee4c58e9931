#pragma once
// XDMF sidecars: a small XML file beside a kinflow HDF5 file that tells ParaView, VisIt and other
// XDMF readers what the datasets are — the snapshots as a temporal collection of point sets
// (Polyvertex topology, geometry from position, node attributes velocity, id, species), the
// pattern of Cabana's HDF5 particle output; a spatial engine's cell fields (/grid, /fields) as a
// temporal collection of 3DCoRectMesh grids with cell-centred attributes. Heavy data stays in
// the HDF5 file; the sidecar references it by file name, so the pair may be moved together.
#include <string>

namespace kinflow::io {

/// The sidecar of `h5_path`: its name with a trailing .h5 / .hdf5 replaced by .xmf
/// (out/run.h5 → out/run.xmf), else with .xmf appended (out/run.h5.incomplete.xmf).
std::string xdmf_path(const std::string& h5_path);

/// Write the sidecar of the kinflow file `h5_file`, which will be (or is) named `final_path`:
/// xdmf_path(final_path), referencing final_path's file name; atomically (`.tmp` + rename).
/// Serial (one rank, the file closed by every other). XDMF has no 1D geometry that ParaView
/// reads, so a 1D file gets one dataset /xdmf/zeros (the y and z of its points). Throws Error
/// naming the file.
void write_xdmf(const std::string& h5_file, const std::string& final_path);

} // namespace kinflow::io
