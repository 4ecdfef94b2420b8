//! Async adapters over [`Connection`](crate::Connection), behind features.
