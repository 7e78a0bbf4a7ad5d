//! The HTTP side: payload types ([`payload`]), the signature check
//! ([`signature`]) and the warp routes ([`routes`]).

pub mod payload;
pub mod routes;
pub mod signature;
