//! The trigger syntax tree and its printing. Printing a parsed trigger and parsing the text
//! again gives the same tree.

use std::fmt;

use crate::js;

/// Conjunction of a group. Segment uses the last `and`/`or` seen at one level for the whole
/// level: `a and b or c` is `or(a, b, c)` (engage-events.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOp {
    /// Every child must match.
    And,
    /// At least one child must match.
    Or,
}

/// A list of conditions joined by one conjunction.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The conjunction.
    pub op: GroupOp,
    /// The conditions; never empty in a parsed trigger.
    pub children: Vec<Condition>,
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `type`.
    Type,
    /// `event`.
    Event,
    /// `name`.
    Name,
    /// `userId`.
    UserId,
    /// `properties.<path>`; on identify and group events Segment reads `traits` instead.
    Properties(Vec<String>),
    /// `traits.<path>`; on events other than identify and group Segment reads `properties`.
    Traits(Vec<String>),
    /// `context.<path>`.
    Context(Vec<String>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`: string equality (`String(actual) === String(expected)`).
    Eq,
    /// `!=`: string inequality.
    Ne,
    /// `<`: numeric.
    Lt,
    /// `<=`: numeric.
    Le,
    /// `>`: numeric.
    Gt,
    /// `>=`: numeric.
    Ge,
}

/// A literal on the right of an operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `"text"` (or a bare word).
    Str(String),
    /// `12`, `-3.5`.
    Num(f64),
    /// `true`, `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// `contains()` and `match()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFn {
    /// `contains(field, "x")`.
    Contains,
    /// `match(field, "x*")`.
    StartsWith,
    /// `match(field, "*x")`.
    EndsWith,
}

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A parenthesised group.
    Group(Group),
    /// `field op literal` with string equality or numeric ordering.
    Compare {
        /// Left side.
        field: Field,
        /// Operator.
        op: CompareOp,
        /// Right side.
        value: Literal,
    },
    /// `field != null` (`exists: true`) or `field = null` (`exists: false`).
    Exists {
        /// Left side.
        field: Field,
        /// Whether the field must exist.
        exists: bool,
    },
    /// `field = true` / `field = false`: requires an actual boolean.
    IsBool {
        /// Left side.
        field: Field,
        /// The boolean required.
        value: bool,
    },
    /// `field = 3` / `field != 3`: numeric equality.
    NumberEquals {
        /// Left side.
        field: Field,
        /// The number.
        value: f64,
        /// `true` for `=`, `false` for `!=`.
        equal: bool,
    },
    /// `contains()` / `match()`, possibly negated with a leading `!`.
    Text {
        /// The field, which must hold a string.
        field: Field,
        /// Which test.
        func: TextFn,
        /// Leading `!`.
        negate: bool,
        /// The text looked for (without the `*` of `match`).
        value: String,
    },
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (root, path) = match self {
            Field::Type => return f.write_str("type"),
            Field::Event => return f.write_str("event"),
            Field::Name => return f.write_str("name"),
            Field::UserId => return f.write_str("userId"),
            Field::Properties(p) => ("properties", p),
            Field::Traits(p) => ("traits", p),
            Field::Context(p) => ("context", p),
        };
        write!(f, "{root}.{}", path.join("."))
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        })
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write_str(f, s),
            // Rust prints the shortest text that parses back to the same f64, never exponents.
            Literal::Num(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

impl Literal {
    /// `String(expected)`.
    pub(crate) fn to_js_string(&self) -> String {
        match self {
            Literal::Str(s) => s.clone(),
            Literal::Num(n) => js::number_to_string(*n),
            Literal::Bool(b) => b.to_string(),
            Literal::Null => "null".to_owned(),
        }
    }

    /// `Number(expected)`.
    pub(crate) fn to_js_number(&self) -> f64 {
        match self {
            Literal::Str(s) => js::string_to_number(s),
            Literal::Num(n) => *n,
            Literal::Bool(b) => f64::from(u8::from(*b)),
            Literal::Null => 0.0,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Group(g) => write!(f, "({g})"),
            Condition::Compare { field, op, value } => write!(f, "{field} {op} {value}"),
            Condition::Exists { field, exists } => {
                write!(f, "{field} {} null", if *exists { "!=" } else { "=" })
            }
            Condition::IsBool { field, value } => write!(f, "{field} = {value}"),
            Condition::NumberEquals {
                field,
                value,
                equal,
            } => {
                write!(
                    f,
                    "{field} {} {}",
                    if *equal { "=" } else { "!=" },
                    Literal::Num(*value)
                )
            }
            Condition::Text {
                field,
                func,
                negate,
                value,
            } => {
                if *negate {
                    f.write_str("!")?;
                }
                let (name, text) = match func {
                    TextFn::Contains => ("contains", value.clone()),
                    TextFn::StartsWith => ("match", format!("{value}*")),
                    TextFn::EndsWith => ("match", format!("*{value}")),
                };
                write!(f, "{name}({field}, ")?;
                write_str(f, &text)?;
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = match self.op {
            GroupOp::And => " and ",
            GroupOp::Or => " or ",
        };
        for (i, c) in self.children.iter().enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}
