//! One module per subcommand.

pub mod eval;
pub mod send;
pub mod serve;
pub mod sim;
pub mod test_mapping;
pub mod common;
pub mod demo;
pub mod demo_model;
pub mod ingest_client;
pub mod lists;
pub mod replay;
pub mod send_to;
pub mod status;
