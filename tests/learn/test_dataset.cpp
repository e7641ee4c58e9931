// The data set: shards, global normalisation and minibatches independent of the rank count;
// snapshot pairing by id; conditions from the recorded deck; clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <Kokkos_Core.hpp>

#include "kinflow/comm/decomposition.hpp"
#include "kinflow/io/snapshot_writer.hpp"
#include "kinflow/learn/dataset.hpp"
#include "learn/learn_support.hpp"

using namespace kinflow;

namespace {
/// A kinflow file with `snaps` snapshots of n particles in 2D: snapshot s has x = (id + s, -id).
std::string write_file(const comm::Communicator& comm, const std::string& name, std::int64_t n, int snaps, const std::string& deck) {
    const std::string path = test::scratch("np" + std::to_string(comm.size()) + "_" + name); // ctest -j runs np1/2/4 at once
    const auto dec = comm::BlockDecomposition::make(n, comm.size(), comm.rank());
    io::SnapshotWriter w(comm, path, io::FileInfo{"test", deck, 1, 2});
    for (int s = 0; s < snaps; ++s) {
        ParticleSet p;
        p.allocate(static_cast<std::size_t>(dec.n_local()), 2, 0, false);
        p.n_global = n;
        auto pos = Kokkos::create_mirror_view(p.position);
        auto id = Kokkos::create_mirror_view(p.id);
        for (std::int64_t i = 0; i < dec.n_local(); ++i) {
            id(i) = dec.begin + i;
            pos(i, 0) = static_cast<double>(dec.begin + i + s);
            pos(i, 1) = -static_cast<double>(dec.begin + i);
        }
        Kokkos::deep_copy(p.position, pos);
        Kokkos::deep_copy(p.id, id);
        w.write(p, 0.5 * s, s, {});
    }
    w.finish();
    return path;
}

/// Every slot of a global batch, gathered by slot number: x1, x0, u.
std::map<std::int64_t, std::vector<float>> by_slot(const comm::Communicator& comm, const learn::Batch& b, int d) {
    std::vector<double> local;
    for (std::int64_t i = 0; i < b.rows; ++i) {
        local.push_back(static_cast<double>(b.slot[i]));
        for (int k = 0; k < d; ++k) local.push_back(b.x1[i * d + k]);
        for (int k = 0; k < d; ++k) local.push_back(b.x0[i * d + k]);
        local.push_back(b.u[i]);
    }
    const auto all = comm.allgatherv(local);
    std::map<std::int64_t, std::vector<float>> out;
    const std::size_t w = 2 + 2 * static_cast<std::size_t>(d);
    for (std::size_t r = 0; r < all.size() / w; ++r) {
        out[static_cast<std::int64_t>(all[r * w])] = std::vector<float>(all.begin() + r * w + 1, all.begin() + (r + 1) * w);
    }
    return out;
}
} // namespace

TEST(LearnData, BuiltinSetsHaveTheirMoments) {
    std::vector<double> x;
    learn::generate_builtin("gaussian", 3, 0, 40000, x);
    double m0 = 0, m1 = 0, c00 = 0, c01 = 0, c11 = 0;
    const double n = 40000;
    for (std::size_t i = 0; i < x.size(); i += 2) {
        m0 += x[i] / n;
        m1 += x[i + 1] / n;
    }
    for (std::size_t i = 0; i < x.size(); i += 2) {
        c00 += (x[i] - m0) * (x[i] - m0) / n;
        c01 += (x[i] - m0) * (x[i + 1] - m1) / n;
        c11 += (x[i + 1] - m1) * (x[i + 1] - m1) / n;
    }
    // 5 standard errors: se(mean_k) = sqrt(S_kk / n), se(S_ij) ~ sqrt((S_ii S_jj + S_ij^2) / n).
    EXPECT_NEAR(m0, 1.0, 5 * std::sqrt(2.0 / n));
    EXPECT_NEAR(m1, -0.5, 5 * std::sqrt(0.5 / n));
    EXPECT_NEAR(c00, 2.0, 5 * std::sqrt(8.0 / n));
    EXPECT_NEAR(c01, 0.6, 5 * std::sqrt(1.36 / n));
    EXPECT_NEAR(c11, 0.5, 5 * std::sqrt(0.5 / n));
    // Rows do not depend on the range asked for.
    std::vector<double> y;
    learn::generate_builtin("gaussian", 3, 1000, 1010, y);
    EXPECT_TRUE(std::equal(y.begin(), y.end(), x.begin() + 2000));
    // Eight Gaussians: radius 4; checkerboard: inside [-4, 4]^2 on the squares of even parity.
    learn::generate_builtin("eight_gaussians", 3, 0, 2000, x);
    double r = 0;
    for (std::size_t i = 0; i < x.size(); i += 2) r += std::hypot(x[i], x[i + 1]) / 2000;
    EXPECT_NEAR(r, 4.0, 0.05);
    learn::generate_builtin("checkerboard", 3, 0, 2000, x);
    for (std::size_t i = 0; i < x.size(); i += 2) {
        ASSERT_LE(std::fabs(x[i]), 4.0);
        ASSERT_LE(std::fabs(x[i + 1]), 4.0);
        const int parity = (static_cast<int>(std::floor(x[i] / 2)) + static_cast<int>(std::floor(x[i + 1] / 2)) + 8) % 2;
        ASSERT_EQ(parity, 0) << x[i] << " " << x[i + 1];
    }
    // Ring around an ellipse: every point is inside the ellipse (x / 2.5)^2 + y^2 <= 1 or at radius
    // 4 +- 6 std (0.2); half in each (5 standard errors of a binomial fraction: 5 sqrt(0.25 / n));
    // the ring's radius has mean 4 and std 0.2, and the ellipse's points have E[x^2] = 2.5^2 / 4,
    // E[y^2] = 1 / 4 (uniform on the filled ellipse), each within 5 standard errors.
    const double ne = 40000;
    learn::generate_builtin("ring_ellipse", 3, 0, 40000, x);
    double inside = 0, rr = 0, rr2 = 0, ex2 = 0, ey2 = 0, ey4 = 0, ex4 = 0;
    for (std::size_t i = 0; i < x.size(); i += 2) {
        const double e = (x[i] / 2.5) * (x[i] / 2.5) + x[i + 1] * x[i + 1], rad = std::hypot(x[i], x[i + 1]);
        if (e <= 1.0) {
            inside += 1;
            ex2 += x[i] * x[i];
            ey2 += x[i + 1] * x[i + 1];
            ex4 += std::pow(x[i], 4);
            ey4 += std::pow(x[i + 1], 4);
        } else {
            ASSERT_NEAR(rad, 4.0, 1.2) << x[i] << " " << x[i + 1];
            rr += rad;
            rr2 += rad * rad;
        }
    }
    const double nr = ne - inside;
    EXPECT_NEAR(inside / ne, 0.5, 5 * std::sqrt(0.25 / ne));
    const double mr = rr / nr, sr = std::sqrt(rr2 / nr - mr * mr);
    EXPECT_NEAR(mr, 4.0, 5 * 0.2 / std::sqrt(nr));
    EXPECT_NEAR(sr, 0.2, 5 * 0.2 / std::sqrt(2 * nr));
    ex2 /= inside;
    ey2 /= inside;
    EXPECT_NEAR(ex2, 2.5 * 2.5 / 4, 5 * std::sqrt((ex4 / inside - ex2 * ex2) / inside));
    EXPECT_NEAR(ey2, 0.25, 5 * std::sqrt((ey4 / inside - ey2 * ey2) / inside));
}

TEST(MpiLearnData, ShardsStatisticsAndBatchesDoNotDependOnRanks) {
    const auto world = comm::Communicator::world();
    learn::TrainOptions o;
    o.data = "builtin:gaussian";
    o.builtin_size = 10007;
    const auto cfg = test::config(o);
    const learn::Dataset all(comm::Communicator::self(), cfg.data);
    const learn::Dataset mine(world, cfg.data);
    // Global statistics: bit-identical.
    EXPECT_EQ(mine.normalization().mean, all.normalization().mean);
    EXPECT_EQ(mine.normalization().std, all.normalization().std);
    // This rank holds a block of the rows.
    const auto& p = mine.parts().front();
    ASSERT_EQ(mine.n_local(), p.end - p.begin);
    EXPECT_EQ(world.sum(mine.n_local()), std::int64_t{10007});
    EXPECT_TRUE(std::equal(mine.target().begin(), mine.target().end(), all.target().begin() + 2 * p.begin));
    // The global batch (rows, noise, times) is the union of the ranks' parts.
    learn::Batch b1, bp;
    all.draw(9, 5, 300, b1);
    mine.draw(9, 5, 300, bp);
    EXPECT_EQ(b1.rows, 300);
    EXPECT_EQ(world.sum(bp.rows), std::int64_t{300});
    EXPECT_EQ(by_slot(world, bp, 2), by_slot(comm::Communicator::self(), b1, 2));
    // Another step draws another batch.
    learn::Batch b2;
    all.draw(9, 6, 300, b2);
    EXPECT_NE(b1.x1, b2.x1);
}

TEST(MpiLearnData, SnapshotsPairByIdWithConditionsFromTheDeck) {
    const auto world = comm::Communicator::world();
    const auto f1 = write_file(world, "pair1.h5", 1000, 3, "[ks]\nchi = 2\n");
    const auto f2 = write_file(world, "pair2.h5", 500, 3, "[ks]\nchi = 4\n");
    learn::TrainOptions o;
    o.data = f1 + "," + f2;
    o.snapshot = "-1";
    o.source = "snapshot:0";
    o.condition = "ks.chi,time";
    const learn::Dataset d(world, test::config(o).data);
    ASSERT_EQ(d.parts().size(), 2u);
    EXPECT_EQ(d.n_global(), 1500);
    EXPECT_EQ(d.parts()[0].cond, (std::vector<double>{2.0, 1.0}));
    EXPECT_EQ(d.parts()[1].cond, (std::vector<double>{4.0, 1.0}));
    // chi normalised over the two files (mean 3, std 1); the time is the same everywhere (std 1).
    EXPECT_EQ(d.normalization().cond_mean, (std::vector<double>{3.0, 1.0}));
    EXPECT_EQ(d.normalization().cond_std, (std::vector<double>{1.0, 1.0}));
    // Target = source + (2, 0) row by row: after each side's own normalisation the second
    // components agree exactly and the first ones up to the shift.
    const auto& n = d.normalization();
    for (std::int64_t i = 0; i < d.n_local(); ++i) {
        const double x1 = d.target()[2 * i] * n.std[0] + n.mean[0];
        const double x0 = d.source()[2 * i] * n.source_std[0] + n.source_mean[0];
        ASSERT_NEAR(x1 - x0, 2.0, 1e-3);
        ASSERT_EQ(d.target()[2 * i + 1], d.source()[2 * i + 1]);
    }
}

TEST(MpiLearnData, BadInputIsAClearError) {
    const auto world = comm::Communicator::world();
    const auto f = write_file(world, "bad.h5", 100, 2, "[ks]\nchi = 2\n");
    auto message = [&](auto edit) {
        learn::TrainOptions o;
        o.data = f;
        edit(o);
        try {
            learn::Dataset d(world, test::config(o).data);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(message([](auto& o) { o.data = "/nonexistent/x.h5"; }).find("/nonexistent/x.h5"), std::string::npos);
    EXPECT_NE(message([](auto& o) { o.snapshot = "5"; }).find("snapshot index 5 out of range"), std::string::npos);
    EXPECT_NE(message([](auto& o) { o.source = "snapshot:7"; }).find("snapshot index 7"), std::string::npos);
    EXPECT_NE(message([](auto& o) { o.condition = "ks.beta"; }).find("no key ks.beta"), std::string::npos);
}

TEST(MpiLearnData, ConditionNormalisationRoundTrip) {
    // Three files chi = 1, 2.5, 6 at snapshot times 0.5 and 1: each part's normalised condition
    // is (raw - mean) / std with the population mean and std of the training values, the value
    // kinflow-sample computes from a raw condition and the model file's cond_mean/cond_std; the
    // inverse gives back the raw value.
    const auto world = comm::Communicator::world();
    std::string files;
    for (const char* chi : {"1", "2.5", "6"})
        files += (files.empty() ? "" : ",") + write_file(world, std::string("norm") + chi + ".h5", 40, 3, std::string("[ks]\nchi = ") + chi + "\n");
    learn::TrainOptions o;
    o.data = files;
    o.snapshot = "1,2";
    o.condition = "ks.chi,time";
    const learn::Dataset d(world, test::config(o).data);
    const auto& n = d.normalization();
    ASSERT_EQ(d.parts().size(), 6u);
    const double mean = (1.0 + 2.5 + 6.0) / 3.0;
    const double sd = std::sqrt(((1 - mean) * (1 - mean) + (2.5 - mean) * (2.5 - mean) + (6 - mean) * (6 - mean)) / 3.0);
    EXPECT_NEAR(n.cond_mean[0], mean, 1e-14);
    EXPECT_NEAR(n.cond_std[0], sd, 1e-14);
    EXPECT_NEAR(n.cond_mean[1], 0.75, 1e-14);
    EXPECT_NEAR(n.cond_std[1], 0.25, 1e-14);
    for (std::size_t p = 0; p < d.parts().size(); ++p) {
        for (int c = 0; c < 2; ++c) {
            const double raw = d.parts()[p].cond[c];
            const float normalised = d.part_conditions()[p * 2 + c];
            EXPECT_FLOAT_EQ(normalised, static_cast<float>((raw - n.cond_mean[c]) / n.cond_std[c]));
            EXPECT_NEAR(normalised * n.cond_std[c] + n.cond_mean[c], raw, 1e-6 * (1 + std::fabs(raw)));
        }
    }
}

TEST(MpiLearnData, ChainedSnapshotsAndPartsPerBatch) {
    // tfm's chain: the source of the k-th listed snapshot is the (k-1)-th (the first's is
    // source_snapshot), paired by id, in the targets' normalisation; write_file's snapshot s has
    // x = (id + s, -id), so target - source = (1, 0) for every row of every part.
    const auto world = comm::Communicator::world();
    const auto f = write_file(world, "chain.h5", 600, 4, "[ks]\nchi = 2\n");
    learn::TrainOptions o;
    o.objective = "tfm";
    o.data = f;
    o.snapshot = "1,2,3";
    o.source = "snapshot:0";
    o.parts_per_batch = 3;
    const auto cfg = test::config(o);
    const learn::Dataset d(world, cfg.data);
    ASSERT_EQ(d.parts().size(), 3u);
    const auto& n = d.normalization();
    EXPECT_EQ(n.source_mean, n.mean);
    EXPECT_EQ(n.source_std, n.std);
    for (std::size_t p = 0; p < 3; ++p) {
        EXPECT_DOUBLE_EQ(d.parts()[p].source_time, 0.5 * static_cast<double>(p));
        EXPECT_DOUBLE_EQ(d.parts()[p].time, 0.5 * static_cast<double>(p + 1));
    }
    for (std::int64_t i = 0; i < d.n_local(); ++i) {
        ASSERT_NEAR((d.target()[2 * i] - d.source()[2 * i]) * n.std[0], 1.0, 1e-3);
        ASSERT_EQ(d.target()[2 * i + 1], d.source()[2 * i + 1]);
    }
    // parts_per_batch = 3: a global batch of 300 holds three blocks of 100 slots, each block from
    // one part; every slot is held by exactly one rank.
    learn::Batch b;
    d.draw(7, 1, 300, b);
    std::vector<double> part_of_slot(300, -1.0);
    for (std::int64_t i = 0; i < b.rows; ++i) part_of_slot[b.slot[i]] = b.part[i];
    const auto all = world.allgatherv(part_of_slot);
    std::vector<double> merged(300, -1.0);
    for (std::size_t r = 0; r < all.size(); ++r)
        if (all[r] >= 0) merged[r % 300] = all[r];
    for (int q = 0; q < 3; ++q) {
        ASSERT_GE(merged[100 * q], 0.0);
        for (int j = 0; j < 100; ++j) ASSERT_EQ(merged[100 * q + j], merged[100 * q]) << "slot " << 100 * q + j;
    }
    // A chain out of time order is refused.
    o.snapshot = "2,1";
    EXPECT_THROW(learn::Dataset(world, test::config(o).data), Error);
}

namespace {
/// A 3D kinflow file with two snapshots of n particles at different means and scales (so that the
/// source and target normalisations differ): rows of a fixed pseudo-random sequence.
std::string write_file3(const comm::Communicator& comm, const std::string& name, std::int64_t n) {
    const std::string path = test::scratch("np" + std::to_string(comm.size()) + "_" + name);
    const auto dec = comm::BlockDecomposition::make(n, comm.size(), comm.rank());
    io::SnapshotWriter w(comm, path, io::FileInfo{"test", "[dsmc]\ninit = bkw\n", 1, 3});
    for (int s = 0; s < 2; ++s) {
        ParticleSet p;
        p.allocate(static_cast<std::size_t>(dec.n_local()), 3, 0, false);
        p.n_global = n;
        auto pos = Kokkos::create_mirror_view(p.position);
        auto id = Kokkos::create_mirror_view(p.id);
        for (std::int64_t i = 0; i < dec.n_local(); ++i) {
            const double g = static_cast<double>(dec.begin + i);
            id(i) = dec.begin + i;
            pos(i, 0) = 0.5 + (1.0 + s) * std::sin(1.3 * g + s);
            pos(i, 1) = -1.0 + (1.0 + 0.5 * s) * std::cos(0.7 * g * g + 2.0 * s);
            pos(i, 2) = 2.0 + 1.5 * std::sin(0.37 * g + 0.2 * g * s) - s;
        }
        Kokkos::deep_copy(p.position, pos);
        Kokkos::deep_copy(p.id, id);
        w.write(p, 1.0 * s, s, {});
    }
    w.finish();
    return path;
}
} // namespace

TEST(LearnData, RandomRotationsAreOrthonormalAndHaar) {
    // Q^T Q = I and det Q = +1 (rotation) for every draw; O(dim) draws have det -1 half of the time;
    // Haar on SO(3): Q e1 uniform on the sphere (mean 0, second moments 1/3), E tr Q = 0, E tr^2 Q = 1.
    constexpr int kDraws = 4000;
    for (int dim : {2, 3, 4, 7}) {
        int negative = 0;
        double mean[3] = {0, 0, 0}, second[3] = {0, 0, 0}, tr = 0, tr2 = 0;
        for (int proper = 0; proper < 2; ++proper) {
            for (int j = 0; j < kDraws; ++j) {
                double q[64];
                learn::random_orthogonal(11, 3, static_cast<std::uint64_t>(j), dim, proper == 1, q);
                for (int a = 0; a < dim; ++a) {
                    for (int b = 0; b < dim; ++b) {
                        double dot = 0.0;
                        for (int r = 0; r < dim; ++r) dot += q[r * dim + a] * q[r * dim + b];
                        ASSERT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-12) << "dim " << dim << " draw " << j;
                    }
                }
                const double det = learn::determinant(q, dim);
                ASSERT_NEAR(std::fabs(det), 1.0, 1e-12);
                if (proper) {
                    ASSERT_GT(det, 0.0) << "dim " << dim << " draw " << j;
                    if (dim == 3) {
                        const double t = q[0] + q[4] + q[8];
                        tr += t / kDraws;
                        tr2 += t * t / kDraws;
                        for (int k = 0; k < 3; ++k) {
                            mean[k] += q[k * 3] / kDraws;
                            second[k] += q[k * 3] * q[k * 3] / kDraws;
                        }
                    }
                } else {
                    negative += det < 0.0;
                }
            }
        }
        EXPECT_NEAR(static_cast<double>(negative) / kDraws, 0.5, 0.04) << "dim " << dim; // SE 0.008
        if (dim == 3) {
            for (int k = 0; k < 3; ++k) {
                EXPECT_NEAR(mean[k], 0.0, 0.04);         // SE 0.009
                EXPECT_NEAR(second[k], 1.0 / 3.0, 0.025); // SE 0.0047
            }
            EXPECT_NEAR(tr, 0.0, 0.08);  // SE 0.016
            EXPECT_NEAR(tr2, 1.0, 0.12); // SE 0.025
        }
    }
}

TEST(MpiLearnData, RotationAugmentationKeepsNormsAndTheCoupling) {
    // The same minibatch drawn without and with train.augment = rotation: in physical coordinates
    // about the targets' mean c, every row's |x1 - c|, |x0 - c| and (x1 - c).(x0 - c) are kept
    // (target and paired source rotated by one matrix), and the rows did move. rotation_reflection
    // likewise.
    const auto world = comm::Communicator::world();
    const auto f = write_file3(world, "rot3.h5", 800);
    for (const char* kind : {"rotation", "rotation_reflection"}) {
        learn::TrainOptions o;
        o.data = f;
        o.snapshot = "1";
        o.source = "snapshot:0";
        const learn::Dataset plain(world, test::config(o).data);
        o.augment = kind;
        const learn::Dataset rotated(world, test::config(o).data);
        const auto& n = plain.normalization();
        ASSERT_EQ(rotated.normalization().mean, n.mean);
        ASSERT_NE(n.source_mean, n.mean); // the source's own normalisation is undone too
        learn::Batch a, b;
        plain.draw(5, 9, 512, a);
        rotated.draw(5, 9, 512, b);
        ASSERT_EQ(a.rows, b.rows);
        ASSERT_EQ(a.slot, b.slot);
        double moved = 0.0;
        for (std::int64_t i = 0; i < a.rows; ++i) {
            double pa1[3], pa0[3], pb1[3], pb0[3];
            for (int k = 0; k < 3; ++k) {
                pa1[k] = n.std[k] * a.x1[3 * i + k];
                pb1[k] = n.std[k] * b.x1[3 * i + k];
                pa0[k] = n.source_mean[k] + n.source_std[k] * a.x0[3 * i + k] - n.mean[k];
                pb0[k] = n.source_mean[k] + n.source_std[k] * b.x0[3 * i + k] - n.mean[k];
            }
            auto dot = [](const double* x, const double* y) { return x[0] * y[0] + x[1] * y[1] + x[2] * y[2]; };
            const double scale = 1.0 + dot(pa1, pa1) + dot(pa0, pa0);
            ASSERT_NEAR(dot(pb1, pb1), dot(pa1, pa1), 1e-5 * scale) << kind << " row " << i;
            ASSERT_NEAR(dot(pb0, pb0), dot(pa0, pa0), 1e-5 * scale) << kind << " row " << i;
            ASSERT_NEAR(dot(pb1, pb0), dot(pa1, pa0), 1e-5 * scale) << kind << " row " << i;
            for (int k = 0; k < 3; ++k) moved = std::max(moved, std::fabs(pb1[k] - pa1[k]));
        }
        if (a.rows > 10) {
            EXPECT_GT(moved, 0.5) << kind;
        }
        // conditions, parts and path times are untouched
        EXPECT_EQ(a.u, b.u);
        EXPECT_EQ(a.part, b.part);
    }
}
