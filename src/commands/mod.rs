//! One module per subcommand.

pub mod common;
pub mod demo;
pub mod demo_model;
pub mod eval;
pub mod ingest_client;
pub mod lists;
pub mod replay;
pub mod send;
pub mod send_to;
pub mod serve;
pub mod sim;
pub mod status;
pub mod test_mapping;
