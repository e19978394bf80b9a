//! The membership ledger and the delivery log, behind one trait, with an embedded SQLite engine.
