//! Shared fixtures for the tests and the benchmark.

pub mod hexgrid;
