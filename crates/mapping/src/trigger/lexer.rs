//! Tokens of the trigger language, each with its 1-based column.

use crate::error::TriggerError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name or dotted path: `type`, `context.personas.computation_key`.
    Ident(Vec<String>),
    Str(String),
    Num(f64),
    Op(&'static str),
    Bang,
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) col: usize,
}

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '-'
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, TriggerError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let fail = |col: usize, message: String| TriggerError {
        column: col + 1,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let col = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += 1;
                Tok::Op("=")
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Op("!=")
            }
            '!' => {
                i += 1;
                Tok::Bang
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                i += if eq { 2 } else { 1 };
                Tok::Op(match (c, eq) {
                    ('<', false) => "<",
                    ('<', true) => "<=",
                    ('>', false) => ">",
                    _ => ">=",
                })
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(fail(col, "unterminated string".into())),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let Some(&e) = chars.get(i + 1) else {
                                return Err(fail(col, "unterminated string".into()));
                            };
                            s.push(e);
                            i += 2;
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                Tok::Str(s)
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                {
                    i += 1;
                    while chars.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                }
                let text: String = chars[start..i].iter().collect();
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => Tok::Num(n),
                    _ => return Err(fail(col, format!("number {text} is out of range"))),
                }
            }
            c if ident_start(c) => {
                let mut segs = Vec::new();
                let mut seg = String::new();
                while let Some(&c) = chars.get(i) {
                    if ident_char(c) {
                        seg.push(c);
                        i += 1;
                    } else if c == '.' && chars.get(i + 1).is_some_and(|&n| ident_char(n)) {
                        segs.push(std::mem::take(&mut seg));
                        i += 1;
                    } else {
                        break;
                    }
                }
                segs.push(seg);
                Tok::Ident(segs)
            }
            other => return Err(fail(col, format!("unexpected character {other:?}"))),
        };
        out.push(Token { tok, col: col + 1 });
    }
    Ok(out)
}
