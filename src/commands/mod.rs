//! One module per subcommand.

pub mod eval;
pub mod send;
pub mod sim;
