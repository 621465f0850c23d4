//! The portal driven in-process through its router, against a database of
//! its own per test and the local Redis.

mod actions;
mod live;
mod page;
mod pay;
mod photos;
mod support;
