//! Storage for watch: the hash-chained audit log and alerts, implementing `argus_detect`'s storage traits.
