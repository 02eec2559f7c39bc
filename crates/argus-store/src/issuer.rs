//! Storage for the issuer: implements `argus_oauth`'s storage traits.
