//! The lexicon: entries (category, severity, word-edge flags) and innocent words
//! (the allow-list) spelt in stream symbols and held in one trie per stream.
//!
//! Matching is run-length tolerant: an entry spelt `ass` needs at least two `s`
//! in a row and any number more (`asssss`), so repeated letters never hide a
//! word and doubled letters still tell `ass` from `as`. A hit of an entry that
//! lies inside a hit of an allow-list word (same stream) is dropped: `시발점`,
//! `수박씨 발라`, `scunthorpe`.
//!
//! Data file syntax (`data/lexicon.txt`): `[category severity]` or `[allow]`
//! section headers, then entries separated by commas or new lines. `<` before an
//! entry: it must start a word; `>` after: it must end one. `#` starts a comment.

use crate::symbols::{self, Streams, Sym};
use crate::{Category, Severity};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// `None` for an allow-list word.
    pub category: Option<Category>,
    /// How bad a hit is.
    pub severity: Severity,
    /// Must start a word.
    pub word_start: bool,
    /// Must end a word.
    pub word_end: bool,
    /// Written with a space: may cross a gap anywhere.
    pub spaced: bool,
}

/// Which stream a hit is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Jamo.
    Hangul,
    /// ASCII letters.
    Latin,
}

/// One match of an entry: symbol positions `start..=last` of its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index into [`Lexicon::entries`].
    pub entry: u32,
    /// Stream of the positions.
    pub stream: Stream,
    /// First symbol.
    pub start: u32,
    /// Last symbol.
    pub last: u32,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    ch: char,
    count: u8,
    standalone: bool,
    to: u32,
}

#[derive(Debug, Default)]
struct Node {
    /// After [`Trie::index`]: sorted by symbol, in insertion order within one
    /// symbol (the order the matcher tries them).
    edges: Vec<Edge>,
    /// The distinct symbols of `edges`, ascending, and where each one's edges
    /// start (`starts[i]..starts[i + 1]`): a binary search over a few
    /// contiguous chars finds them (the root has hundreds of edges).
    chars: Vec<char>,
    starts: Vec<u32>,
    /// Indices into `edges` in insertion order (the order a wildcard tries them).
    wild: Vec<u32>,
    terminals: Vec<u32>,
}

#[derive(Debug)]
struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    fn new() -> Trie {
        Trie {
            nodes: vec![Node::default()],
        }
    }

    fn insert(&mut self, runs: &[(char, u8, bool)], entry: u32) {
        let mut at = 0usize;
        for &(ch, count, standalone) in runs {
            let found = self.nodes[at]
                .edges
                .iter()
                .find(|e| e.ch == ch && e.count == count && e.standalone == standalone)
                .map(|e| e.to as usize);
            at = match found {
                Some(to) => to,
                None => {
                    let to = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[at].edges.push(Edge {
                        ch,
                        count,
                        standalone,
                        to: to as u32,
                    });
                    to
                }
            };
        }
        self.nodes[at].terminals.push(entry);
    }

    /// Sorts every node's edges by symbol and builds its lookup (after the
    /// last insert).
    fn index(&mut self) {
        for node in &mut self.nodes {
            let mut order: Vec<u32> = (0..node.edges.len() as u32).collect();
            order.sort_by_key(|&i| (node.edges[i as usize].ch, i));
            let mut sorted = Vec::with_capacity(order.len());
            let mut wild = vec![0u32; order.len()];
            for (at, &i) in order.iter().enumerate() {
                let e = &node.edges[i as usize];
                if node.chars.last() != Some(&e.ch) {
                    node.chars.push(e.ch);
                    node.starts.push(at as u32);
                }
                wild[i as usize] = at as u32;
                sorted.push(*e);
            }
            node.starts.push(sorted.len() as u32);
            node.edges = sorted;
            node.wild = wild;
        }
    }
}

impl Node {
    /// The edges on symbol `ch`, in insertion order.
    #[inline]
    fn edges_on(&self, ch: char) -> &[Edge] {
        match self.chars.binary_search(&ch) {
            Ok(i) => &self.edges[self.starts[i] as usize..self.starts[i + 1] as usize],
            Err(_) => &[],
        }
    }
}

/// A lexicon compiled into tries.
#[derive(Debug)]
pub struct Lexicon {
    /// Every entry, in file order.
    pub entries: Vec<Entry>,
    /// The text of each entry as written in the file (without `<`/`>`).
    pub texts: Vec<String>,
    hangul: Trie,
    latin: Trie,
}

/// A malformed lexicon line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lexicon line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Spells `text` as runs `(symbol, count, must be written-out jamo)` of one stream.
fn runs(syms: &[Sym]) -> Vec<(char, u8, bool)> {
    let mut out: Vec<(char, u8, bool)> = Vec::new();
    for s in syms {
        let standalone = s.flags & symbols::STANDALONE != 0;
        match out.last_mut() {
            Some((ch, n, st)) if *ch == s.ch && *st == standalone => *n = n.saturating_add(1),
            _ => out.push((s.ch, 1, standalone)),
        }
    }
    out
}

impl Lexicon {
    /// Parses and compiles a lexicon file.
    pub fn parse(source: &str) -> Result<Lexicon, ParseError> {
        let mut lex = Lexicon {
            entries: Vec::new(),
            texts: Vec::new(),
            hangul: Trie::new(),
            latin: Trie::new(),
        };
        let mut section: Option<(Option<Category>, Severity)> = None;
        let mut folded = Vec::new();
        let mut streams = Streams::default();
        for (n, raw) in source.lines().enumerate() {
            let err = |message: String| ParseError {
                line: n + 1,
                message,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(head) = line.strip_prefix('[') {
                let head = head
                    .strip_suffix(']')
                    .ok_or_else(|| err("unclosed section header".into()))?;
                let mut parts = head.split_whitespace();
                let name = parts.next().unwrap_or("");
                if name == "allow" {
                    section = Some((None, Severity::Mild));
                    continue;
                }
                let category = Category::from_name(name)
                    .ok_or_else(|| err(format!("unknown category {name:?}")))?;
                let severity = match parts.next() {
                    Some("1") => Severity::Mild,
                    Some("2") => Severity::Strong,
                    Some("3") => Severity::Severe,
                    other => return Err(err(format!("severity must be 1, 2 or 3, not {other:?}"))),
                };
                section = Some((Some(category), severity));
                continue;
            }
            let (category, severity) =
                section.ok_or_else(|| err("entry before any section header".into()))?;
            for item in line.split(',') {
                let mut item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let word_start = item.starts_with('<');
                if word_start {
                    item = &item[1..];
                }
                let word_end = item.ends_with('>');
                if word_end {
                    item = &item[..item.len() - 1];
                }
                crate::fold::fold_into(item, &mut folded);
                symbols::build(&folded, &mut streams);
                let id = lex.entries.len() as u32;
                let korean = !streams.hangul.is_empty() && !item.is_ascii();
                let (syms, trie) = if korean {
                    (&streams.hangul, &mut lex.hangul)
                } else {
                    (&streams.latin, &mut lex.latin)
                };
                if syms.is_empty() {
                    return Err(err(format!("entry {item:?} spells nothing")));
                }
                trie.insert(&runs(syms), id);
                lex.entries.push(Entry {
                    category,
                    severity,
                    word_start,
                    word_end,
                    spaced: item.contains(' '),
                });
                lex.texts.push(item.to_string());
            }
        }
        lex.hangul.index();
        lex.latin.index();
        Ok(lex)
    }

    /// Finds every hit in both streams, then drops the hits covered by an
    /// allow-list hit. `hits` is cleared first; `allowed` ends up holding the
    /// allow-list hits.
    pub fn find(&self, s: &Streams, hits: &mut Vec<Hit>, allowed: &mut Vec<Hit>) {
        let scratch = allowed;
        hits.clear();
        scratch.clear();
        for (stream, syms, trie) in [
            (Stream::Hangul, &s.hangul, &self.hangul),
            (Stream::Latin, &s.latin, &self.latin),
        ] {
            let mut m = Matcher {
                lex: self,
                trie,
                syms,
                stream,
                out: scratch,
            };
            let root = &trie.nodes[0];
            for (start, sym) in syms.iter().enumerate() {
                let f = sym.flags;
                if f & symbols::SYL_START != 0
                    && f & symbols::WILD == 0
                    && !root.edges_on(sym.ch).is_empty()
                {
                    m.walk(0, start, start, start, false, false);
                }
            }
        }
        // `scratch` holds allow-list and entry hits; keep entry hits not inside
        // an allow hit.
        for h in scratch.iter() {
            if self.entries[h.entry as usize].category.is_none() {
                continue;
            }
            let allowed = scratch.iter().any(|a| {
                self.entries[a.entry as usize].category.is_none()
                    && a.stream == h.stream
                    && a.start <= h.start
                    && h.last <= a.last
            });
            if !allowed && !hits.contains(h) {
                hits.push(*h);
            }
        }
        scratch.retain(|a| self.entries[a.entry as usize].category.is_none());
    }
}

/// Longest run of one symbol followed (longer runs are cut there).
const MAX_RUN: usize = 16;

struct Matcher<'a> {
    lex: &'a Lexicon,
    trie: &'a Trie,
    syms: &'a [Sym],
    stream: Stream,
    out: &'a mut Vec<Hit>,
}

impl Matcher<'_> {
    /// At trie `node` having consumed `start..pos` (last consumed `last`).
    fn walk(
        &mut self,
        node: usize,
        pos: usize,
        start: usize,
        last: usize,
        crossed: bool,
        fresh: bool,
    ) {
        let trie = self.trie;
        let syms = self.syms;
        if fresh {
            for &e in &trie.nodes[node].terminals {
                let entry = self.lex.entries[e as usize];
                let free = entry.spaced;
                let need_start = entry.word_start || (crossed && !free);
                let need_end = entry.word_end || (crossed && !free);
                let ok = syms[last].flags & symbols::SYL_END != 0
                    && (!need_start || syms[start].flags & symbols::WORD_START != 0)
                    && (!need_end || syms[last].flags & symbols::WORD_END != 0);
                if ok {
                    self.out.push(Hit {
                        entry: e,
                        stream: self.stream,
                        start: start as u32,
                        last: last as u32,
                    });
                }
            }
        }
        if pos >= syms.len() || trie.nodes[node].edges.is_empty() {
            return;
        }
        let s = syms[pos];
        let gap = pos > start && s.flags & symbols::GAP != 0;
        let filler_skip = s.flags & symbols::FILLER != 0 && node != 0;
        if s.flags & symbols::WILD == 0
            && !filler_skip
            && trie.nodes[node].edges_on(s.ch).is_empty()
        {
            // Nothing continues with this symbol and it cannot be skipped.
            return;
        }
        if s.flags & symbols::WILD != 0 {
            let n = &trie.nodes[node];
            for edge in n.wild.iter().map(|&i| &n.edges[i as usize]) {
                if edge.count == 1 && !edge.standalone && edge.ch.is_ascii_alphabetic() {
                    self.walk(edge.to as usize, pos + 1, start, pos, crossed || gap, true);
                }
            }
            return;
        }
        // The run of `s.ch` from `pos` (fillers between its symbols skipped):
        // where each of its symbols is, whether a gap came before it, and
        // whether all so far are written-out jamo.
        let mut at = [(0usize, false, false); MAX_RUN];
        let mut len = 0;
        let mut i = pos;
        let mut run_gap = gap;
        let mut all_standalone = true;
        while i < syms.len() && len < MAX_RUN {
            let x = syms[i];
            if x.ch == s.ch && x.flags & symbols::WILD == 0 {
                if i > pos && x.flags & symbols::GAP != 0 {
                    run_gap = true;
                }
                all_standalone &= x.flags & symbols::STANDALONE != 0;
                at[len] = (i, run_gap, all_standalone);
                len += 1;
                i += 1;
            } else if x.flags & symbols::FILLER != 0 && len > 0 {
                if x.flags & symbols::GAP != 0 {
                    run_gap = true;
                }
                i += 1;
            } else {
                break;
            }
        }
        for edge in trie.nodes[node].edges_on(s.ch) {
            let need = (edge.count as usize).max(1);
            if need > len {
                continue;
            }
            // The entry needs at least `count`; the run may end anywhere after.
            for &(end, run_gap, standalone) in &at[need - 1..len] {
                if !edge.standalone || standalone {
                    self.walk(
                        edge.to as usize,
                        end + 1,
                        start,
                        end,
                        crossed || run_gap,
                        true,
                    );
                }
            }
        }
        if filler_skip {
            self.walk(node, pos + 1, start, last, crossed || gap, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::fold_into;

    const LEX: &str =
        "[profanity 2]\n시발, ㅅㅂ, 씹, <ass>, fuck\n[threat 3]\n<kill you>\n[allow]\n시발점\n";

    fn found(text: &str) -> Vec<String> {
        let lex = Lexicon::parse(LEX).unwrap();
        let mut f = Vec::new();
        fold_into(text, &mut f);
        let mut s = Streams::default();
        symbols::build(&f, &mut s);
        let (mut hits, mut scratch) = (Vec::new(), Vec::new());
        lex.find(&s, &mut hits, &mut scratch);
        hits.iter()
            .map(|h| lex.texts[h.entry as usize].clone())
            .collect()
    }

    #[test]
    fn evasions_and_innocents() {
        assert_eq!(found("시발"), ["시발"]);
        assert_eq!(found("씨이이발"), ["시발"]);
        assert_eq!(found("시 발 놈"), ["시발"]);
        assert!(found("다시 발견했다").is_empty());
        assert!(found("시발점").is_empty());
        assert!(found("깃발").is_empty());
        assert_eq!(found("ㅅ ㅂ"), ["ㅅㅂ"]);
        assert!(found("십만원").is_empty());
        assert_eq!(found("씹"), ["씹"]);
        assert_eq!(found("asss"), ["ass"]);
        assert!(found("assassin class as").is_empty());
        assert_eq!(found("f*ck"), ["fuck"]);
        assert_eq!(found("fuuuck"), ["fuck"]);
        assert_eq!(found("i will kill you"), ["kill you"]);
        assert!(found("skill yourself").is_empty());
    }
}
