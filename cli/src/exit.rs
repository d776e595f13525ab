//! The exit codes of every `firebreak` command: one meaning each, whatever the command.

/// Done as asked (a drill: it ended as `--expect` said, or its execution succeeded).
pub const OK: u8 = 0;
/// Done, but not as expected: the drill ended otherwise, the execution failed, or a
/// check (`validate`) found problems.
pub const UNEXPECTED: u8 = 1;
/// The input (finding, event, drill input, option) was refused before any AWS call.
pub const INPUT: u8 = 2;
/// The policy document was refused.
pub const POLICY: u8 = 3;
/// An AWS problem: no credentials, no region, no such state machine, a call refused.
pub const AWS: u8 = 4;
/// Firebreak itself could not run (a file unreadable, the runtime not started).
pub const INTERNAL: u8 = 5;
