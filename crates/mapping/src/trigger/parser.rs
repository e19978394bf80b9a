//! Recursive-descent parser for the trigger language (engage-events.md §2.1), strict about
//! syntax (errors name the column) and faithful to Segment about meaning: unknown roots are
//! dropped, one conjunction per level, `= true`/`= null`/numbers typed by root.

use super::ast::{CompareOp, Condition, Field, Group, GroupOp, Literal, TextFn};
use super::lexer::{Tok, Token, lex};
use crate::error::TriggerError;

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    end_col: usize,
}

fn err(column: usize, message: impl Into<String>) -> TriggerError {
    TriggerError {
        column,
        message: message.into(),
    }
}

pub(crate) fn parse(src: &str) -> Result<Group, TriggerError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end_col: src.chars().count() + 1,
    };
    let parsed = p.group(false, 0)?;
    match parsed {
        None => Err(err(
            1,
            "no supported condition: use type, event, name, userId, properties.*, traits.* or context.*",
        )),
        Some(Condition::Group(g)) => Ok(g),
        Some(other) => Ok(Group {
            op: GroupOp::And,
            children: vec![other],
        }),
    }
}

fn classify(segs: &[String]) -> Option<Field> {
    let rest = || segs[1..].to_vec();
    match segs.first().map(String::as_str)? {
        "type" => Some(Field::Type),
        "event" => Some(Field::Event),
        "name" => Some(Field::Name),
        "userId" => Some(Field::UserId),
        "properties" if segs.len() > 1 => Some(Field::Properties(rest())),
        "traits" if segs.len() > 1 => Some(Field::Traits(rest())),
        "context" if segs.len() > 1 => Some(Field::Context(rest())),
        _ => None,
    }
}

/// Applies Segment's typing rules to `field op value`.
fn build(field: Field, op: CompareOp, value: Literal) -> Condition {
    let basic = matches!(field, Field::Type | Field::Event | Field::Name);
    if basic {
        // type, event and name always compare as strings.
        let value = Literal::Str(value.to_js_string());
        return Condition::Compare { field, op, value };
    }
    match (op, value) {
        (CompareOp::Ne, Literal::Null) => Condition::Exists {
            field,
            exists: true,
        },
        (CompareOp::Eq, Literal::Null) => Condition::Exists {
            field,
            exists: false,
        },
        (CompareOp::Eq, Literal::Bool(b)) => Condition::IsBool { field, value: b },
        (CompareOp::Eq, Literal::Num(n)) => Condition::NumberEquals {
            field,
            value: n,
            equal: true,
        },
        (CompareOp::Ne, Literal::Num(n)) => Condition::NumberEquals {
            field,
            value: n,
            equal: false,
        },
        (op, value) => Condition::Compare { field, op, value },
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn col(&self) -> usize {
        self.peek().map_or(self.end_col, |t| t.col)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), TriggerError> {
        let col = self.col();
        match self.next() {
            Some(t) if &t.tok == want => Ok(()),
            Some(_) => Err(err(col, format!("expected {what}"))),
            None => Err(err(col, format!("expected {what}, found the end"))),
        }
    }

    fn conjunction(&self) -> Option<GroupOp> {
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Ident(s)) if s.len() == 1 && s[0] == "and" => Some(GroupOp::And),
            Some(Tok::Ident(s)) if s.len() == 1 && s[0] == "or" => Some(GroupOp::Or),
            _ => None,
        }
    }

    /// Parses conditions joined by `and`/`or` up to the end (or a `)` when `nested`).
    /// Returns `None` when every condition was dropped.
    fn group(&mut self, nested: bool, depth: usize) -> Result<Option<Condition>, TriggerError> {
        if depth > MAX_DEPTH {
            return Err(err(
                self.col(),
                format!("parentheses nested deeper than {MAX_DEPTH}"),
            ));
        }
        let mut op = GroupOp::And;
        let mut children = Vec::new();
        loop {
            if let Some(c) = self.term(depth)? {
                children.push(c);
            }
            if let Some(conj) = self.conjunction() {
                // The last conjunction at a level wins for the whole level (Segment's quirk).
                op = conj;
                self.pos += 1;
                continue;
            }
            match self.peek().map(|t| &t.tok) {
                None if !nested => break,
                None => return Err(err(self.end_col, "missing closing parenthesis")),
                Some(Tok::RParen) if nested => break,
                Some(Tok::RParen) => return Err(err(self.col(), "unexpected closing parenthesis")),
                Some(_) => return Err(err(self.col(), "expected \"and\", \"or\" or the end")),
            }
        }
        Ok(match children.len() {
            0 => None,
            1 => children.pop(),
            _ => Some(Condition::Group(Group { op, children })),
        })
    }

    fn term(&mut self, depth: usize) -> Result<Option<Condition>, TriggerError> {
        let col = self.col();
        let Some(tok) = self.next() else {
            return Err(err(col, "expected a condition, found the end"));
        };
        match tok.tok {
            Tok::LParen => {
                let inner = self.group(true, depth + 1)?;
                self.expect(&Tok::RParen, "\")\"")?;
                Ok(inner)
            }
            Tok::Bang => {
                let fcol = self.col();
                match self.next().map(|t| t.tok) {
                    Some(Tok::Ident(s))
                        if s.len() == 1 && (s[0] == "contains" || s[0] == "match") =>
                    {
                        self.function(&s[0], true)
                    }
                    _ => Err(err(fcol, "expected contains( or match( after \"!\"")),
                }
            }
            Tok::Ident(segs) => {
                let is_fn = segs.len() == 1
                    && (segs[0] == "contains" || segs[0] == "match")
                    && matches!(self.peek().map(|t| &t.tok), Some(Tok::LParen));
                if is_fn {
                    return self.function(&segs[0], false);
                }
                if segs.len() == 1 && (segs[0] == "and" || segs[0] == "or") {
                    return Err(err(col, "expected a condition before \"and\"/\"or\""));
                }
                self.comparison(&segs)
            }
            _ => Err(err(col, "expected a condition")),
        }
    }

    fn comparison(&mut self, segs: &[String]) -> Result<Option<Condition>, TriggerError> {
        let col = self.col();
        let op = match self.next().map(|t| t.tok) {
            Some(Tok::Op(o)) => match o {
                "=" => CompareOp::Eq,
                "!=" => CompareOp::Ne,
                "<" => CompareOp::Lt,
                "<=" => CompareOp::Le,
                ">" => CompareOp::Gt,
                _ => CompareOp::Ge,
            },
            Some(_) => return Err(err(col, "expected an operator (=, !=, <, <=, >, >=)")),
            None => return Err(err(col, "expected an operator, found the end")),
        };
        let vcol = self.col();
        let value = match self.next().map(|t| t.tok) {
            Some(Tok::Str(s)) => Literal::Str(s),
            Some(Tok::Num(n)) => Literal::Num(n),
            Some(Tok::Ident(v)) if v.len() == 1 => match v[0].as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "null" => Literal::Null,
                "and" | "or" => return Err(err(vcol, "expected a value")),
                // Segment reads a bare word as text.
                word => Literal::Str(word.to_owned()),
            },
            Some(_) => {
                return Err(err(
                    vcol,
                    "expected a value (\"text\", number, true, false or null)",
                ));
            }
            None => return Err(err(vcol, "expected a value, found the end")),
        };
        Ok(classify(segs).map(|field| build(field, op, value)))
    }

    fn function(&mut self, name: &str, negate: bool) -> Result<Option<Condition>, TriggerError> {
        self.expect(&Tok::LParen, "\"(\"")?;
        let fcol = self.col();
        let field = match self.next().map(|t| t.tok) {
            Some(Tok::Ident(segs)) => match classify(&segs) {
                // Segment's functions ignore `type`.
                Some(Field::Type) => None,
                other => other,
            },
            _ => {
                return Err(err(
                    fcol,
                    format!("{name}() expects a field as its first argument"),
                ));
            }
        };
        self.expect(&Tok::Comma, "\",\"")?;
        let vcol = self.col();
        let text = match self.next().map(|t| t.tok) {
            Some(Tok::Str(s)) => s,
            _ => {
                return Err(err(
                    vcol,
                    format!("{name}() expects a string as its second argument"),
                ));
            }
        };
        self.expect(&Tok::RParen, "\")\"")?;
        let (func, value) = if name == "contains" {
            (TextFn::Contains, text)
        } else if let Some(prefix) = text.strip_suffix('*') {
            (TextFn::StartsWith, prefix.to_owned())
        } else {
            // Segment drops the first character whatever it is: match(f, "abc") ends with "bc".
            let rest: String = text.chars().skip(1).collect();
            if rest.is_empty() {
                (TextFn::StartsWith, rest)
            } else {
                (TextFn::EndsWith, rest)
            }
        };
        Ok(field.map(|field| Condition::Text {
            field,
            func,
            negate,
            value,
        }))
    }
}
