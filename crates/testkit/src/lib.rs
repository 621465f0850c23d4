//! Test support shared by every crate's tests: a PostgreSQL database of its
//! own for each test, cloned from a migrated template, and a Redis queue
//! namespace of its own, so tests run in parallel without seeing each other.

pub mod db;
pub mod smtp;
