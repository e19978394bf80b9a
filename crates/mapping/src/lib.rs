//! Segment-compatible mapping directives and the trigger language. Pure functions, no I/O.
