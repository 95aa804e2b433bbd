#pragma once
// Small synthetic datasets for experiments and teaching, each a deterministic function of its
// arguments and an explicit seed (same seed -> bit-identical data on every platform: the
// randomness is drawn from the raw output of std::mt19937_64, with our own uniform and normal
// transforms rather than std::*_distribution, whose results differ between standard
// libraries).
//
// Randomness used below: U(a, b) = a + (b - a) * u with u = (rng() >> 11) * 2^-53 in [0, 1);
// N(0, 1) by Box-Muller, z = sqrt(-2 ln(1 - u1)) * cos(2 pi u2), one fresh (u1, u2) per value.
// Values are computed in double and rounded to T once.
//
// Classification sets are emitted grouped by class (class 0 first), like sklearn with
// shuffle=False: shuffle with a DataLoader or train_test_split. Every generator throws
// ValueError for n = 0, a negative or non-finite noise/std, or a too-short sequence.
#include <cstddef>
#include <cstdint>

#include "tapegrad/data/dataset.hpp"

namespace tapegrad {

// Two interleaved spirals in 2-D, 2 classes, n_per_class points each (exactly balanced).
// Point i of class c (i = 0..n-1): t = (i + 1) / n, theta = 4 pi t (two turns), r = t,
//   x = (-1)^c * (r cos theta, r sin theta) + noise * N(0, I_2).
// Class 1 is class 0 rotated by pi, so the arms are 0.25 apart radially; without noise every
// point lies in [-1, 1]^2. inputs (2n, 2), labels 0 then 1.
template <class T>
Dataset<T> two_spirals(std::size_t n_per_class, double noise, std::uint64_t seed);

// sklearn.datasets.make_moons geometry: n_out = n / 2 (floor) points of the upper moon
// (label 0) and n_in = n - n_out of the lower one (label 1):
//   outer k: (cos a_k, sin a_k),            a_k = pi k / (n_out - 1)
//   inner k: (1 - cos b_k, 1 - sin b_k - 0.5), b_k = pi k / (n_in - 1)   (a, b = 0 for one point)
// plus noise * N(0, I_2). inputs (n, 2), labels 0 then 1 (sklearn shuffles by default; we do not).
template <class T>
Dataset<T> moons(std::size_t n, double noise, std::uint64_t seed);

// Isotropic Gaussian blobs like sklearn.datasets.make_blobs: `centers` centres drawn
// U(-10, 10)^dim, then n_c points around centre c, x = mu_c + std * N(0, I_dim), where
// n_c = floor(n / centers) + (c < n mod centers). inputs (n, dim), labels = centre index.
template <class T>
Dataset<T> gaussian_blobs(std::size_t n, std::size_t centers, std::size_t dim, double std,
                          std::uint64_t seed);

// The adding problem (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015 and Arjovsky
// et al. 2016): a sequence of T steps with 2 channels,
//   channel 0: v_t ~ U(0, 1)
//   channel 1: a marker, 1 at exactly two steps i in [0, T/2) and j in [T/2, T) (uniform, T/2
//              rounded down), 0 elsewhere;
// target y = v_i + v_j. inputs (n, T, 2), targets (n, 1), T >= 2. Var(y) = 2 * (1/12) = 1/6, so
// always predicting the mean E[y] = 1 gives an MSE of ~0.167: a model has learned something
// only once its loss is clearly below that.
template <class T>
Dataset<T> adding_problem(std::size_t n, std::size_t seq_len, std::uint64_t seed);

// Next-step prediction of a sine: per sequence omega ~ U(0.1, 0.6) rad/step (periods of about
// 10 to 63 steps) and phi ~ U(0, 2 pi); input x_t = sin(omega t + phi) for t = 0..T-1, target
// sin(omega T + phi). inputs (n, T, 1), targets (n, 1), values in [-1, 1], T >= 1.
template <class T>
Dataset<T> sine_next_step(std::size_t n, std::size_t seq_len, std::uint64_t seed);

// Parity of a bit string: inputs (n, T, 1) of independent fair bits b_t in {0, 1} (the top bit
// of one rng() draw each), label = (sum_t b_t) mod 2 as class 0/1. T >= 1.
template <class T>
Dataset<T> parity(std::size_t n, std::size_t seq_len, std::uint64_t seed);

}  // namespace tapegrad
