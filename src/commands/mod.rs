//! One module per subcommand.

pub mod eval;
pub mod send;
pub mod serve;
pub mod sim;
pub mod test_mapping;
