//! The default interpreter: no model, no network. A message is split into clauses ("analyse and
//! then plan ITN" is two), each clause gets one intent from phrase tables checked in a fixed
//! order, and the arguments are pulled from the text and matched against the session's wards and
//! columns. The result still goes through [`crate::guards::apply_guards`].

use mrpt_table::{ItnStrategy, RankingMethod};

use crate::answer::capabilities;
use crate::context::{ItnDraft, Pending, SessionContext, VariableInfo};
use crate::guards::RERUN_PHRASES;
use crate::matching::{find_variables, find_wards, normalise, suggest_wards};
use crate::numbers::{find_numbers, itn_numbers, tokens};
use crate::tools::{ExplainTopic, MapMethod, ToolCall};
use mrpt_table::explore::{Agg, CorrelationMethod, FilterOp, MissingBy};

/// What the rules make of a message, before the guards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleDraft {
    pub calls: Vec<ToolCall>,
    pub replies: Vec<String>,
    pub pending: Option<Pending>,
    /// The message answered a question the assistant asked ("yes", "100000"): deterministic,
    /// so no model is consulted.
    pub answers_pending: bool,
}

/// A clause's text in the forms the phrase tables need.
struct Text {
    raw: String,
    /// Normalised and padded with spaces, so phrases match whole words only.
    padded: String,
    words: Vec<String>,
}

impl Text {
    fn new(raw: &str) -> Text {
        let norm = normalise(raw);
        Text {
            raw: raw.to_string(),
            padded: format!(" {norm} "),
            words: norm
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    fn has(&self, phrase: &str) -> bool {
        let p = normalise(phrase);
        !p.is_empty() && self.padded.contains(&format!(" {p} "))
    }

    fn any(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| self.has(p))
    }

    fn starts(&self, prefixes: &[&str]) -> bool {
        self.words
            .iter()
            .any(|w| prefixes.iter().any(|p| w.starts_with(p)))
    }

    /// The normalised text after the first of `markers`, if any.
    fn after(&self, markers: &[&str]) -> Option<String> {
        markers
            .iter()
            .filter_map(|m| {
                let p = format!(" {} ", normalise(m));
                self.padded.find(&p).map(|i| (i, i + p.len()))
            })
            .min_by_key(|(i, _)| *i)
            .map(|(_, end)| self.padded[end..].trim().to_string())
    }
}

const ITN_WORDS: &[&str] = &[
    "itn",
    "itns",
    "llin",
    "llins",
    "bed net",
    "bed nets",
    "bednet",
    "bednets",
    "mosquito net",
    "mosquito nets",
    "nets",
    "net distribution",
    "net allocation",
    "net campaign",
];
const MAP_PREFIXES: &[&str] = &[
    "map",
    "choropleth",
    "visuali",
    "plot",
    "chart",
    "graph",
    "heatmap",
];
const EXCLUDE_MARKERS: &[&str] = &[
    "exclude",
    "excluding",
    "without",
    "except",
    "drop",
    "dropping",
    "remove",
    "removing",
    "leave out",
    "leaving out",
    "not using",
    "but not",
    "omit",
    "omitting",
    "take out",
];
const INCLUDE_MARKERS: &[&str] = &[
    "using",
    "use",
    "with",
    "only",
    "include",
    "including",
    "based on",
    "on variables",
];
const AND_VERBS: &[&str] = &[
    "plan",
    "show",
    "map",
    "run",
    "analyse",
    "analyze",
    "give",
    "list",
    "compare",
    "explain",
    "export",
    "download",
    "create",
    "make",
    "distribute",
    "allocate",
    "tell",
    "display",
    "plot",
    "visualise",
    "visualize",
    "rank",
    "then",
    "generate",
    "produce",
    "draw",
    "what",
    "which",
    "how",
    "why",
];

/// Split on "and then", "then", "after that", sentence ends, and "and"/"," before a verb.
fn split_clauses(message: &str) -> Vec<String> {
    let mut clauses = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let words: Vec<&str> = message.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let lower = w.to_lowercase();
        let bare: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
        let next_bare: String = words
            .get(i + 1)
            .map(|n| {
                n.to_lowercase()
                    .chars()
                    .skip_while(|c| !c.is_alphanumeric())
                    .take_while(|c| c.is_alphanumeric())
                    .collect()
            })
            .unwrap_or_default();
        let boundary_word = matches!(bare.as_str(), "then" | "afterwards" | "afterward")
            || (bare == "after" && next_bare == "that")
            || (bare == "after"
                && matches!(
                    next_bare.as_str(),
                    "running" | "doing" | "performing" | "you" | "analysing" | "analyzing"
                ))
            || (bare == "followed" && next_bare == "by")
            || (bare == "and"
                && (next_bare == "then" || AND_VERBS.contains(&next_bare.as_str()))
                && !current.is_empty());
        if boundary_word && !current.is_empty() {
            clauses.push(current.join(" "));
            current.clear();
            // Swallow the connective itself.
            if (bare == "after" && next_bare == "that")
                || (bare == "followed" && next_bare == "by")
                || (bare == "and" && next_bare == "then")
            {
                i += 1;
            }
            i += 1;
            continue;
        }
        current.push(w);
        let ends_sentence =
            (w.ends_with('.') || w.ends_with('?') || w.ends_with('!') || w.ends_with(';'))
                && !w
                    .trim_end_matches(['.', '?', '!', ';'])
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',');
        let comma_verb =
            w.ends_with(',') && (AND_VERBS.contains(&next_bare.as_str()) || next_bare == "help");
        if ends_sentence || comma_verb {
            clauses.push(current.join(" "));
            current.clear();
        }
        i += 1;
    }
    if !current.is_empty() {
        clauses.push(current.join(" "));
    }
    clauses.retain(|c| !normalise(c).is_empty());
    clauses
}

/// Longer messages are read only this far: chat requests are short, and the phrase tables should
/// not cost more on a pasted document.
const MAX_RULE_INPUT: usize = 2_000;

fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// What one clause asks for.
#[derive(Debug, Clone, PartialEq)]
enum ClauseIntent {
    Call(ToolCall),
    /// ITN without a net total: ask for it.
    AskNets(ItnDraft),
    Reply(String),
    Help,
    Unknown,
}

const YES: &[&str] = &[
    "yes",
    "y",
    "ok",
    "okay",
    "sure",
    "proceed",
    "continue",
    "go",
    "yep",
    "yeah",
    "affirmative",
    "please do",
    "go ahead",
    "do it",
    "run it",
    "alright",
    "fine",
];
const NO: &[&str] = &[
    "no", "not", "dont", "don t", "do not", "cancel", "stop", "wait", "hold", "nope", "later",
];

fn is_confirmation(t: &Text) -> bool {
    t.words.len() <= 8 && t.any(YES) && !t.any(NO)
}

fn is_refusal(t: &Text) -> bool {
    t.words.len() <= 8 && t.any(NO)
}

/// The rule-based interpretation of one message.
pub fn interpret(message: &str, ctx: &SessionContext) -> RuleDraft {
    let mut draft = RuleDraft::default();
    let trimmed = clip(message.trim(), MAX_RULE_INPUT);
    if trimmed == "__DATA_UPLOADED__" {
        if ctx.data_loaded {
            draft.calls.push(ToolCall::DataSummary);
            draft.pending = Some(Pending::RunAnalysis { then: Vec::new() });
        } else {
            draft.replies.push(capabilities(ctx));
        }
        return draft;
    }
    let whole = Text::new(trimmed);
    if whole.words.is_empty() {
        draft.replies.push(capabilities(ctx));
        return draft;
    }

    match &ctx.pending {
        Some(Pending::RunAnalysis { then }) if is_confirmation(&whole) => {
            draft.calls.push(ToolCall::RunAnalysis {
                variables: None,
                exclude: Vec::new(),
                force: false,
            });
            draft.calls.extend(then.iter().cloned());
            draft.answers_pending = true;
            return draft;
        }
        Some(Pending::RunAnalysis { .. }) if is_refusal(&whole) => {
            draft.replies.push(
                "No problem, I won't run the analysis now. You can explore the data first (\"what's in my data?\", \"map rainfall\") and say \"run the analysis\" whenever you're ready.".to_string(),
            );
            draft.answers_pending = true;
            return draft;
        }
        _ => {}
    }

    let pending_nets = match &ctx.pending {
        Some(Pending::NetTotal { draft }) => Some(draft.clone()),
        _ => None,
    };

    let clauses = split_clauses(trimmed);
    let single = clauses.len() == 1;
    let mut intents: Vec<ClauseIntent> = Vec::new();
    for clause in &clauses {
        let text = Text::new(clause);
        let previous_itn = intents.iter().any(|i| {
            matches!(
                i,
                ClauseIntent::Call(ToolCall::PlanItn { .. }) | ClauseIntent::AskNets(_)
            )
        });
        intents.push(classify(&text, ctx, pending_nets.as_ref(), previous_itn));
    }

    // A reply to "how many nets?" may be just a number, with no ITN words at all.
    if let Some(d) = &pending_nets
        && !intents
            .iter()
            .any(|i| matches!(i, ClauseIntent::Call(_) | ClauseIntent::AskNets(_)))
    {
        let n = itn_numbers(trimmed, true);
        if let Some(total) = n.total_nets {
            intents = vec![ClauseIntent::Call(itn_call(total, &n, d, &whole))];
            draft.answers_pending = true;
        } else if n.avg_household_size.is_some() || n.urban_threshold.is_some() {
            let mut d = d.clone();
            d.avg_household_size = n.avg_household_size.or(d.avg_household_size);
            d.urban_threshold = n.urban_threshold.or(d.urban_threshold);
            intents = vec![ClauseIntent::AskNets(d)];
        }
    }

    let mut asked_nets = false;
    for intent in intents {
        match intent {
            ClauseIntent::Call(call) => {
                if !draft.calls.contains(&call) {
                    draft.calls.push(call);
                }
            }
            ClauseIntent::AskNets(d) => {
                if !asked_nets {
                    asked_nets = true;
                    draft.replies.push(ask_nets_text(&d));
                    draft.pending = Some(Pending::NetTotal { draft: d });
                }
            }
            ClauseIntent::Reply(r) => draft.replies.push(r),
            ClauseIntent::Help if single => draft.replies.push(capabilities(ctx)),
            ClauseIntent::Help | ClauseIntent::Unknown => {}
        }
    }
    // Analysis always runs before whatever depends on it, whatever order the user wrote.
    if let Some(pos) = draft
        .calls
        .iter()
        .position(|c| matches!(c, ToolCall::RunAnalysis { .. }))
        && pos > 0
    {
        let call = draft.calls.remove(pos);
        draft.calls.insert(0, call);
    }
    if draft.calls.is_empty() && draft.replies.is_empty() {
        draft.replies.push(format!(
            "I'm not sure what you'd like me to do with that. {}",
            capabilities(ctx)
        ));
    }
    draft
}

/// Whether the rules read `message` as a question about the ward table that the exploration
/// tools answer: LGA views, statistics, filters, top-N lists, correlations and charts. Other
/// layers (the TPR conversation) ask this instead of keeping a phrase list of their own, so the
/// two cannot drift apart. Only with a ward table loaded; missing-value summaries and variable
/// maps are not counted (with a facility export, "missing data" and "map TPR" are its own).
pub fn explores_ward_table(message: &str, ctx: &SessionContext) -> bool {
    let trimmed = clip(message.trim(), MAX_RULE_INPUT);
    split_clauses(trimmed).iter().any(|clause| {
        matches!(
            classify_explore(&Text::new(clause), ctx),
            Some(ClauseIntent::Call(
                ToolCall::LgaRanking { .. }
                    | ToolCall::WardsInLga { .. }
                    | ToolCall::LgaItn
                    | ToolCall::UrbanExtentMap { .. }
                    | ToolCall::Describe { .. }
                    | ToolCall::Filter { .. }
                    | ToolCall::GroupBy { .. }
                    | ToolCall::TopN { .. }
                    | ToolCall::Correlate { .. }
                    | ToolCall::CorrelationMatrix { .. }
                    | ToolCall::CompositeMaps { .. }
                    | ToolCall::RankingChart { .. }
            ))
        )
    })
}

fn ask_nets_text(d: &ItnDraft) -> String {
    let mut known = Vec::new();
    if let Some(h) = d.avg_household_size {
        known.push(format!("household size {h}"));
    }
    if let Some(t) = d.urban_threshold {
        known.push(format!("urban threshold {t}%"));
    }
    let noted = if known.is_empty() {
        String::new()
    } else {
        format!(" I've noted {}.", known.join(" and "))
    };
    format!(
        "To plan the ITN distribution I need the number of nets you have available (for example \"I have 120,000 nets\").{noted} You can also give the average household size (for example \"household size 5\"); otherwise I'll use the standard 5 people per household."
    )
}

fn itn_call(total: u64, n: &crate::numbers::ItnNumbers, draft: &ItnDraft, t: &Text) -> ToolCall {
    let (method, strategy) = itn_method(t);
    ToolCall::PlanItn {
        total_nets: total,
        avg_household_size: n.avg_household_size.or(draft.avg_household_size),
        urban_threshold: n.urban_threshold.or(draft.urban_threshold),
        method: method.unwrap_or(draft.method),
        strategy: strategy.or(draft.strategy),
    }
}

fn itn_method(t: &Text) -> (Option<RankingMethod>, Option<ItnStrategy>) {
    let method = if t.any(&["pca", "principal component"]) {
        Some(RankingMethod::Pca)
    } else if t.has("composite") {
        Some(RankingMethod::Composite)
    } else {
        None
    };
    let strategy = if t.any(&[
        "rural first",
        "rural areas first",
        "rural wards first",
        "prioritise rural",
        "prioritize rural",
        "rural_first",
    ]) {
        Some(ItnStrategy::RuralFirst)
    } else if t.any(&["by rank", "rank order", "strictly by rank", "in rank order"]) {
        Some(ItnStrategy::Rank)
    } else {
        None
    };
    (method, strategy)
}

fn explain_topic(t: &Text) -> Option<ExplainTopic> {
    let composite = t.has("composite");
    let pca = t.any(&["pca", "principal component", "principal components"]);
    if (composite && pca)
        || t.any(&[
            "methodology",
            "method",
            "methods",
            "approach",
            "how does the analysis work",
            "how does this analysis work",
            "how does it work",
            "how are wards ranked",
            "how are the wards ranked",
            "how did you rank",
            "how do you rank",
            "ranking work",
            "explain the analysis",
            "how was the analysis done",
            "how is risk calculated",
            "vulnerability category",
            "vulnerability categories",
            "risk category",
            "risk categories",
            "categories",
        ])
    {
        return Some(ExplainTopic::General);
    }
    if pca {
        return Some(ExplainTopic::Pca);
    }
    if composite
        || t.any(&[
            "score calculated",
            "score computed",
            "how is the score",
            "scores calculated",
            "scores computed",
        ])
    {
        return Some(ExplainTopic::Composite);
    }
    if t.starts(&["imput"])
        || t.any(&[
            "missing values",
            "missing data",
            "missing value",
            "fill gaps",
            "gaps filled",
            "filled in",
        ])
    {
        return Some(ExplainTopic::Imputation);
    }
    if t.starts(&["normali", "rescal", "standardi"]) || t.any(&["scaling", "min max", "scaled"]) {
        return Some(ExplainTopic::Normalisation);
    }
    if t.any(ITN_WORDS)
        && t.starts(&[
            "allocat",
            "distribut",
            "decid",
            "prioriti",
            "calculat",
            "work",
        ])
        && t.any(&["how", "explain", "method", "logic", "way"])
    {
        return Some(ExplainTopic::Itn);
    }
    None
}

const EXPLAIN_CUES: &[&str] = &[
    "how",
    "why",
    "what is",
    "what s",
    "what are",
    "what does",
    "explain",
    "describe",
    "why use",
    "why do you use",
    "tell me about",
    "difference between",
    "meaning",
    "mean",
    "means",
    "define",
    "definition",
    "understand",
    "work",
    "works",
    "methodology",
    "method",
    "calculated",
    "computed",
    "difference",
    "help me understand",
    "walk me through",
];

fn classify(
    t: &Text,
    ctx: &SessionContext,
    pending_nets: Option<&ItnDraft>,
    previous_itn: bool,
) -> ClauseIntent {
    const GREETINGS: &[&str] = &[
        "hi",
        "hello",
        "hey",
        "help",
        "good morning",
        "good afternoon",
        "good evening",
        "what can you do",
        "what can i do",
        "what can i ask",
        "how do i start",
        "how do i use this",
        "what do you do",
        "who are you",
        "thanks",
        "thank you",
        "menu",
        "options",
    ];
    let wards = find_wards(&t.raw, &ctx.wards);

    if let Some(intent) = classify_explore(t, ctx) {
        return intent;
    }

    // Downloads.
    if t.starts(&["download", "export"])
        || t.any(&["zip", "package", "zip file"])
        || (t.has("report")
            && t.starts(&[
                "generat", "creat", "make", "get", "give", "build", "produce",
            ]))
    {
        return ClauseIntent::Call(ToolCall::ExportPackage);
    }

    // Box plots.
    if t.any(&[
        "box plot",
        "box plots",
        "boxplot",
        "boxplots",
        "box and whisker",
        "whisker",
        "whiskers",
    ]) {
        let page = t
            .after(&["page"])
            .and_then(|rest| find_numbers(&rest).first().map(|n| n.value))
            .filter(|v| *v >= 1.0 && v.fract() == 0.0 && *v <= 10_000.0)
            .map_or(1, |v| v as u32);
        return ClauseIntent::Call(ToolCall::BoxPlot { page });
    }

    let map_word = t.starts(MAP_PREFIXES);
    let itn_words = t.any(ITN_WORDS);
    let nets_given = itn_numbers(&t.raw, itn_words).total_nets;
    let detail_cue = t.any(&[
        "why",
        "rank",
        "ranked",
        "ranking",
        "score",
        "scores",
        "category",
        "driv",
        "drivers",
        "explain",
        "tell me about",
        "details",
        "detail",
        "about",
        "how is",
        "how vulnerable",
        "what makes",
        "position",
        "where does",
        "where is",
        "factors",
        "vulnerable",
        "risk",
        "at risk",
        "high",
        "low",
        "first",
        "last",
        "top",
        "so high",
        "so low",
        "doing",
    ]);

    // Two wards: a comparison.
    if wards.len() >= 2 && !map_word {
        return ClauseIntent::Call(ToolCall::CompareWards {
            a: wards[0].ward.clone(),
            b: wards[1].ward.clone(),
        });
    }
    if t.has("compare") && wards.len() == 1 && !t.any(&["composite", "pca"]) {
        return ClauseIntent::Reply(format!(
            "Which ward should I compare {} with? Give me two ward names, for example \"compare {} and {}\".",
            wards[0].ward,
            wards[0].ward,
            ctx.wards
                .iter()
                .find(|w| **w != wards[0].ward)
                .map_or("another ward", String::as_str)
        ));
    }

    // One ward and a question about it.
    // One ward and anything but a map or a net plan: its rank, category and drivers answer
    // "what is the tpr in Zango?" as well as "why is Zango first?".
    let question = t.any(&["what", "how", "is", "show", "give", "which", "does", "do"]);
    if wards.len() == 1
        && !map_word
        && !(itn_words && nets_given.is_some())
        && (detail_cue || question || t.words.len() <= wards[0].end - wards[0].start + 1)
    {
        return ClauseIntent::Call(ToolCall::WardDetail {
            ward: wards[0].ward.clone(),
        });
    }

    // How the method works.
    if let Some(topic) = explain_topic(t)
        && t.any(EXPLAIN_CUES)
        && !(topic == ExplainTopic::Itn && nets_given.is_some())
        && !(map_word && topic != ExplainTopic::General)
        && !(map_word && t.any(&["composite", "pca"]))
    {
        return ClauseIntent::Call(ToolCall::ExplainMethod { topic });
    }

    // "Why is Nowhere ranked first?" - a ward we can't find.
    if wards.is_empty()
        && !ctx.wards.is_empty()
        && let Some(rest) = t.after(&[
            "why is",
            "why does",
            "why was",
            "tell me about ward",
            "details for",
            "details of",
        ])
    {
        {
            let stop = [
                "so", "high", "low", "in", "at", "the", "first", "top", "ward", "is", "a", "on",
                "number",
            ];
            let stop_prefix = ["rank", "scor", "categor", "consider", "listed", "placed"];
            let name: Vec<&str> = rest
                .split(' ')
                .take_while(|w| !stop.contains(w) && !stop_prefix.iter().any(|p| w.starts_with(p)))
                .collect();
            let name = name.join(" ");
            if !name.is_empty()
                && name.len() <= 40
                && !t.any(&[
                    "wards",
                    "these",
                    "they",
                    "it",
                    "this",
                    "that",
                    "pca",
                    "composite",
                ])
            {
                let near = suggest_wards(&name, &ctx.wards, 3);
                let hint = if near.is_empty() {
                    String::new()
                } else {
                    format!(" Did you mean {}?", near.join(", "))
                };
                return ClauseIntent::Reply(format!(
                    "I couldn't find a ward called \"{name}\" in your data.{hint}"
                ));
            }
        }
    }

    // Maps.
    let numeric: Vec<VariableInfo> = ctx.numeric_variables().cloned().collect();
    let variables = find_variables(&t.raw, &numeric);
    let vulnerability_words = t.starts(&[
        "vulnerab",
        "risk",
        "composite",
        "pca",
        "priorit",
        "hotspot",
        "rank",
    ]) || t.any(&["hot spot", "hot spots", "score", "scores"]);
    let itn_map_words = t.starts(&["itn", "llin", "distribution", "allocation"])
        || t.any(&[
            "net distribution",
            "nets distribution",
            "bed net",
            "bed nets",
            "nets",
        ]);
    if map_word
        || t.any(&[
            "distribution of",
            "spatial pattern",
            "spatial distribution",
            "where are the hotspots",
            "hotspots",
        ])
        || (t.has("compare") && t.has("composite") && t.has("pca"))
    {
        // "map the net distribution" is the ITN map even though a column name contains "net".
        let only_net_columns = itn_map_words
            && variables.iter().all(|v| v.to_lowercase().contains("net"))
            && !t.any(&["per capita", "coverage"]);
        let explicit_variable = !variables.is_empty() && !only_net_columns;
        if explicit_variable && !vulnerability_words {
            return ClauseIntent::Call(ToolCall::VariableMap {
                variable: variables[0].clone(),
            });
        }
        if itn_map_words && nets_given.is_none() && !t.starts(&["vulnerab"]) {
            return ClauseIntent::Call(ToolCall::ItnMap);
        }
        if map_word || vulnerability_words {
            let method = if t.any(&["both", "side by side", "compare", "comparison"])
                || (t.has("composite") && t.has("pca"))
            {
                MapMethod::Both
            } else if t.any(&["pca", "principal component"]) {
                MapMethod::Pca
            } else {
                MapMethod::Composite
            };
            if previous_itn && !vulnerability_words {
                return ClauseIntent::Call(ToolCall::ItnMap);
            }
            if !itn_words || nets_given.is_none() {
                return ClauseIntent::Call(ToolCall::VulnerabilityMap { method });
            }
        }
    }

    // ITN planning.
    let plan_words = t.any(&["distribute", "allocate", "distribution plan", "campaign"]);
    if itn_words || (nets_given.is_some() && (pending_nets.is_some() || plan_words)) {
        let bare = itn_words || pending_nets.is_some();
        let n = itn_numbers(&t.raw, bare);
        let base = pending_nets.cloned().unwrap_or_default();
        if let Some(total) = n.total_nets {
            return ClauseIntent::Call(itn_call(total, &n, &base, t));
        }
        if t.any(&[
            "which wards",
            "which ward",
            "where should",
            "where do",
            "most urgently",
            "priority wards",
        ]) {
            return ClauseIntent::Call(ToolCall::TopWards {
                n: top_n(t).unwrap_or(10),
                bottom: false,
                decile: false,
                method: itn_method(t).0.unwrap_or_default(),
            });
        }
        let (method, strategy) = itn_method(t);
        let d = ItnDraft {
            avg_household_size: n.avg_household_size.or(base.avg_household_size),
            urban_threshold: n.urban_threshold.or(base.urban_threshold),
            method: method.unwrap_or(base.method),
            strategy: strategy.or(base.strategy),
        };
        return ClauseIntent::AskNets(d);
    }

    // Analysis runs.
    let analyse_verb = t.words.iter().any(|w| {
        matches!(
            w.as_str(),
            "analyse" | "analyze" | "analysing" | "analyzing" | "analysed" | "analyzed"
        )
    });
    let analysis_noun = t.any(&["analysis", "assessment"]);
    let action = t.any(&[
        "run",
        "do",
        "perform",
        "start",
        "conduct",
        "execute",
        "begin",
        "launch",
        "carry out",
        "kick off",
        "go ahead",
        "proceed",
        "need",
        "want",
        "let s",
        "lets",
        "can you",
        "please",
        "could you",
        "would like",
        "try",
        "running",
        "doing",
        "performing",
        "after",
        "first",
        "use",
        "using",
        "only",
        "include",
    ]) || t.any(RERUN_PHRASES);
    let rank_request = t.any(&[
        "rank the wards",
        "rank wards",
        "rank my wards",
        "rank all wards",
        "rank all the wards",
        "prioritise wards",
        "prioritize wards",
        "prioritise the wards",
        "prioritize the wards",
    ]);
    let rerun =
        t.any(RERUN_PHRASES) && (analysis_noun || analyse_verb || t.has("it") || t.has("analysis"));
    let exclude_text = t.after(EXCLUDE_MARKERS);
    let what_if = t.any(&[
        "what if",
        "suppose",
        "what happens if",
        "try without",
        "how about without",
    ]);
    let analysis_request = analyse_verb
        || (analysis_noun
            && (action
                || t.any(&[
                    "risk analysis",
                    "vulnerability analysis",
                    "risk assessment",
                    "vulnerability assessment",
                ])))
        || (rank_request && !ctx.analysis_complete)
        || rerun
        || (exclude_text.is_some()
            && (what_if || analysis_noun || t.has("variables") || t.has("variable")));
    if analysis_request {
        let exclude = exclude_text
            .as_deref()
            .map(|rest| find_variables(rest, &ctx.variables))
            .unwrap_or_default();
        if let Some(rest) = &exclude_text
            && exclude.is_empty()
        {
            let named: Vec<&str> = rest
                .split(' ')
                .filter(|w| {
                    !matches!(
                        *w,
                        "the" | "a" | "variable" | "variables" | "column" | "from" | "analysis"
                    )
                })
                .take(3)
                .collect();
            if !named.is_empty() {
                return ClauseIntent::Reply(format!(
                    "\"{}\" is not a column in your data, so I can't leave it out. The numeric variables are: {}.",
                    named.join(" "),
                    ctx.numeric_variables()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let include_text = t.after(INCLUDE_MARKERS).map(|rest| {
            let cut = EXCLUDE_MARKERS
                .iter()
                .filter_map(|m| format!(" {rest} ").find(&format!(" {} ", normalise(m))))
                .min()
                .unwrap_or(rest.len() + 1);
            format!(" {rest} ")[..cut].to_string()
        });
        let variables = include_text
            .map(|s| find_variables(&s, &ctx.variables))
            .filter(|v| !v.is_empty());
        return ClauseIntent::Call(ToolCall::RunAnalysis {
            variables,
            exclude,
            force: rerun,
        });
    }

    // Ranked lists.
    let top_cue = t.any(&[
        "top",
        "bottom",
        "highest",
        "lowest",
        "most at risk",
        "most vulnerable",
        "least",
        "worst",
        "riskiest",
        "priority wards",
        "high risk",
        "low risk",
        "high risk wards",
        "decile",
        "ranking",
        "rankings",
        "which wards",
        "list wards",
        "list the wards",
        "ranked list",
        "most affected",
        "safest",
        "best",
        "rank the wards",
        "rank wards",
        "most at-risk",
        "prioritised wards",
        "prioritized wards",
        "first",
        "vulnerable wards",
    ]) || (t.starts(&["ward"]) && t.any(&["risk", "vulnerab", "priorit"]));
    // "Which ward has the highest rainfall?" is about one variable, not the risk ranking.
    if top_cue && !variables.is_empty() && !vulnerability_words && !itn_words {
        return ClauseIntent::Call(ToolCall::VariableMap {
            variable: variables[0].clone(),
        });
    }
    if top_cue && !t.any(&["what does high risk mean", "what is high risk"]) {
        let bottom = t.any(&[
            "bottom", "lowest", "least", "safest", "low risk", "best", "last",
        ]);
        let decile = t.any(&[
            "decile",
            "top tenth",
            "bottom tenth",
            "10 percent",
            "ten percent",
        ]) || t.raw.contains("10%");
        let n = top_n(t).unwrap_or(10);
        let method = if t.any(&["pca", "principal component"]) {
            RankingMethod::Pca
        } else {
            RankingMethod::Composite
        };
        return ClauseIntent::Call(ToolCall::TopWards {
            n,
            bottom,
            decile,
            method,
        });
    }

    if ctx.analysis_complete
        && t.has("used")
        && t.any(&["variables", "variable", "factors", "indicators", "columns"])
        && !ctx.variables_used.is_empty()
    {
        return ClauseIntent::Reply(format!(
            "The analysis{} used {} variables: {}. Say \"run the analysis using ...\" or \"what if we exclude ...\" to try a different set.",
            ctx.analysis_id
                .as_deref()
                .map_or_else(String::new, |id| format!(" ({id})")),
            ctx.variables_used.len(),
            ctx.variables_used.join(", ")
        ));
    }

    // The data itself.
    if t.any(&[
        "what s in it",
        "what is in it",
        "show me the data",
        "show the data",
        "show my data",
        "show me my data",
        "view the data",
        "see the data",
        "see my data",
        "what s in my data",
        "what is in my data",
        "what s in the data",
        "what is in the data",
        "what variables",
        "which variables",
        "variables available",
        "available variables",
        "list variables",
        "list the variables",
        "columns",
        "what columns",
        "data summary",
        "summary of the data",
        "summary of my data",
        "summarise",
        "summarize",
        "describe the data",
        "describe my data",
        "data quality",
        "quality of the data",
        "overview",
        "what data",
        "how many wards",
        "how many rows",
        "missing values",
        "completeness",
        "tell me about the data",
        "tell me about my data",
        "look at my data",
        "variables do i have",
        "what did i upload",
        "what have i uploaded",
        "fields",
    ]) || (t.has("variables") && t.any(&["what", "which", "list", "show"]))
    {
        return ClauseIntent::Call(ToolCall::DataSummary);
    }

    if t.any(GREETINGS) {
        return ClauseIntent::Help;
    }
    ClauseIntent::Unknown
}

/// The LGA named in the text (longest name first), if any.
fn find_lga(t: &Text, lgas: &[String]) -> Option<String> {
    let mut sorted: Vec<&String> = lgas.iter().collect();
    sorted.sort_by_key(|l| std::cmp::Reverse(l.len()));
    sorted.into_iter().find(|l| t.has(l)).cloned()
}

const LGA_WORDS: &[&str] = &[
    "lga",
    "lgas",
    "local government",
    "local governments",
    "local government area",
    "local government areas",
];
const PER_LGA: &[&str] = &[
    "per lga",
    "by lga",
    "each lga",
    "every lga",
    "for each lga",
    "across lgas",
    "across the lgas",
    "by local government",
    "per local government",
    "lga level",
    "at lga level",
    "lga by lga",
    "in each lga",
];
const PER_CATEGORY: &[&str] = &[
    "per category",
    "by category",
    "by vulnerability category",
    "per vulnerability category",
    "by risk category",
    "per risk category",
    "each category",
    "each risk category",
];

fn agg_word(t: &Text) -> Option<Agg> {
    if t.any(&["average", "averages", "mean", "means"]) {
        Some(Agg::Mean)
    } else if t.any(&["total", "totals", "sum", "sums"]) {
        Some(Agg::Sum)
    } else if t.has("median") {
        Some(Agg::Median)
    } else if t.any(&["minimum", "min", "smallest value"]) {
        Some(Agg::Min)
    } else if t.any(&["maximum", "max", "largest value"]) {
        Some(Agg::Max)
    } else if t.any(&["count", "number of wards", "how many wards"]) {
        Some(Agg::Count)
    } else {
        None
    }
}

fn correlation_method(t: &Text) -> CorrelationMethod {
    if t.any(&["spearman", "rank correlation", "spearman s"]) {
        CorrelationMethod::Spearman
    } else {
        CorrelationMethod::Pearson
    }
}

/// A comparison and its number: "above 0.5", "less than 3", ">= 10".
fn comparison(t: &Text) -> Option<(FilterOp, String)> {
    const OPS: &[(&[&str], FilterOp)] = &[
        (
            &["at least", "no less than", "greater than or equal to", ">="],
            FilterOp::Ge,
        ),
        (
            &["at most", "no more than", "less than or equal to", "<="],
            FilterOp::Le,
        ),
        (
            &[
                "above",
                "over",
                "greater than",
                "more than",
                "higher than",
                "exceeds",
                "exceeding",
                "exceed",
                "bigger than",
                "larger than",
                ">",
            ],
            FilterOp::Gt,
        ),
        (
            &[
                "below",
                "under",
                "less than",
                "lower than",
                "smaller than",
                "fewer than",
                "<",
            ],
            FilterOp::Lt,
        ),
        (&["not equal to", "other than", "!="], FilterOp::Ne),
        (
            &["equal to", "equals", "equal", "exactly", "=="],
            FilterOp::Eq,
        ),
    ];
    let raw = t.raw.replace(">=", " >= ").replace("<=", " <= ");
    let padded = format!(" {} ", raw.to_lowercase());
    for (words, op) in OPS {
        for w in *words {
            let needle = if w.chars().all(|c| c.is_alphabetic() || c == ' ') {
                format!(" {w} ")
            } else {
                (*w).to_string()
            };
            if let Some(i) = padded.find(&needle) {
                let rest = &padded[i + needle.len()..];
                if let Some(n) = find_numbers(rest).first() {
                    return Some((*op, n.value.to_string()));
                }
            }
        }
    }
    None
}

/// LGA views and data exploration; `None` leaves the clause to the other rules.
fn classify_explore(t: &Text, ctx: &SessionContext) -> Option<ClauseIntent> {
    if !ctx.data_loaded {
        return None;
    }
    let numeric: Vec<VariableInfo> = ctx.numeric_variables().cloned().collect();
    let nums = find_variables(&t.raw, &numeric);
    let all = find_variables(&t.raw, &ctx.variables);
    let lga_word = t.any(LGA_WORDS);
    let per_lga = t.any(PER_LGA) || (lga_word && t.any(&["each", "every", "per", "by", "across"]));
    let lga = find_lga(t, &ctx.lgas);
    // "nets per capita" is a column, not an ITN request.
    let itn = t.any(ITN_WORDS) && !nums.iter().any(|v| v.to_lowercase().contains("net"));
    let vulnerability = t.starts(&["vulnerab", "risk", "priorit", "composite"])
        || t.any(&[
            "score",
            "scores",
            "ranking",
            "rank",
            "ranked",
            "worst",
            "most affected",
        ]);

    // Composite score maps and the ranking chart.
    if t.any(&[
        "composite score maps",
        "composite maps",
        "composite score map for each model",
        "model maps",
        "maps of each model",
        "map of each model",
        "maps for each model",
        "map every model",
        "maps of every model",
        "maps of all models",
        "maps of the models",
        "per model maps",
        "per model map",
        "individual model maps",
        "model score maps",
        "each model s score",
        "maps of the model scores",
    ]) {
        let page = t
            .after(&["page"])
            .and_then(|rest| find_numbers(&rest).first().map(|n| n.value))
            .filter(|v| *v >= 1.0 && v.fract() == 0.0 && *v <= 10_000.0)
            .map_or(1, |v| v as u32);
        return Some(ClauseIntent::Call(ToolCall::CompositeMaps { page }));
    }
    if t.any(&[
        "ranking chart",
        "rank chart",
        "ranking bar chart",
        "ranking bar graph",
        "bar chart of the ranking",
        "bar chart of the rankings",
        "bar chart of ranks",
        "bar chart of the ranks",
        "bar chart of ward ranks",
        "bar chart of the wards",
        "bar graph of the ranking",
        "chart of the ranking",
        "chart of the rankings",
        "ranking as a chart",
        "ranking as a bar chart",
        "ranking graph",
        "chart the ranking",
        "plot the ranking",
        "plot the rankings",
    ]) {
        let method = if t.any(&["pca", "principal component"]) {
            RankingMethod::Pca
        } else {
            RankingMethod::Composite
        };
        return Some(ClauseIntent::Call(ToolCall::RankingChart { method }));
    }

    // Urban extent.
    if !itn
        && (t.any(&[
            "urban extent",
            "urban extents",
            "urban area map",
            "urban map",
            "urbanisation map",
            "urbanization map",
            "urban wards faded",
            "fade rural",
            "faint rural",
            "non urban wards",
            "urban coverage map",
        ]) || (t.starts(&["urban"])
            && (t.starts(MAP_PREFIXES) || t.any(&["threshold", "extent", "show", "only"]))))
    {
        let threshold = find_numbers(&t.raw)
            .into_iter()
            .map(|n| n.value)
            .find(|v| (0.0..=100.0).contains(v));
        return Some(ClauseIntent::Call(ToolCall::UrbanExtentMap { threshold }));
    }

    // ITN totals per LGA.
    if itn && (per_lga || lga_word) && itn_numbers(&t.raw, true).total_nets.is_none() {
        return Some(ClauseIntent::Call(ToolCall::LgaItn));
    }

    // Correlation heatmap, then one pair.
    if t.any(&[
        "correlation matrix",
        "correlation heatmap",
        "correlation heat map",
        "correlations heatmap",
        "heatmap of correlations",
        "heatmap of the correlations",
        "heat map of correlations",
        "correlation table",
        "all correlations",
        "all the correlations",
        "correlations between all",
        "correlations among all",
        "correlate all",
        "correlate everything",
        "correlations of all",
        "how are the variables correlated",
        "how do the variables correlate",
        "pairwise correlations",
    ]) {
        return Some(ClauseIntent::Call(ToolCall::CorrelationMatrix {
            method: correlation_method(t),
        }));
    }
    let scatter = t.any(&["scatter", "scatter plot", "scatterplot", "scatter chart"]);
    let relate = t.starts(&["correlat"])
        || scatter
        || t.any(&[
            "relationship between",
            "association between",
            "relationship of",
            "related to",
            "relate to",
            "associated with",
            "linked to",
            "link between",
            "connection between",
        ])
        || (t.any(&["vs", "versus", "against"]) && t.starts(&["plot", "chart", "graph"]));
    if relate && !t.any(&["how does the analysis", "explain"]) {
        let method = correlation_method(t);
        if all.len() >= 2 {
            return Some(ClauseIntent::Call(ToolCall::Correlate {
                a: all[0].clone(),
                b: all[1].clone(),
                method,
            }));
        }
        return Some(ClauseIntent::Reply(format!(
            "To compute a correlation I need two numeric columns of your data{}. The numeric columns are: {}.",
            match all.first() {
                Some(c) => format!(" (I found only {c})"),
                None => String::new(),
            },
            numeric
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    // Missing values.
    let missing = t.any(&[
        "missing",
        "missingness",
        "missing data",
        "missing values",
        "gaps",
        "incomplete",
        "blank",
        "blanks",
        "nulls",
        "empty cells",
    ]);
    if missing
        && !t.starts(&["handl", "imput", "fill", "treat", "deal"])
        && (t.has("missingness")
            || t.any(&[
                "by lga",
                "per lga",
                "each lga",
                "by year",
                "per year",
                "each year",
                "by column",
                "per column",
                "each column",
                "by variable",
                "per variable",
                "each variable",
                "which columns",
                "which variables",
                "which lgas",
                "which years",
                "where",
                "how many",
                "how much",
                "pattern",
                "patterns",
                "count",
                "report",
                "table",
                "map",
                "check",
                "show me",
                "breakdown",
            ]))
    {
        let by = if t.any(&["year", "years", "yearly", "annual"]) {
            MissingBy::Year
        } else if lga_word || t.any(&["which lgas"]) {
            MissingBy::Lga
        } else {
            MissingBy::Column
        };
        return Some(ClauseIntent::Call(ToolCall::Missingness { by }));
    }

    // LGA rankings and the wards of an LGA.
    let rank_cue = t.starts(&["rank", "compar", "worst", "best", "priorit"])
        || t.any(&[
            "most vulnerable",
            "least vulnerable",
            "highest",
            "lowest",
            "order",
            "sort",
            "league table",
            "most at risk",
            "at risk",
            "which lgas",
            "which lga",
            "got worse",
            "riskiest",
            "average risk",
            "mean risk",
        ]);
    if (t.any(&[
        "lgas",
        "local governments",
        "local government areas",
        "lga ranking",
        "lga rankings",
    ]) || per_lga)
        && (rank_cue || vulnerability)
        && agg_word(t).is_none_or(|_| vulnerability && nums.is_empty())
        && lga.is_none()
    {
        return Some(ClauseIntent::Call(ToolCall::LgaRanking {
            variable: if vulnerability && !t.any(&["by", "on", "of"]) {
                None
            } else {
                nums.first().cloned()
            },
        }));
    }
    let wards_in = t.any(&["wards in", "wards of", "wards within", "which wards are in"]);
    if lga.is_none()
        && lga_word
        && wards_in
        && t.after(&["wards in", "wards of", "wards within", "which wards are in"])
            .is_some()
    {
        let asked = t
            .after(&["wards in", "wards of", "wards within", "which wards are in"])
            .unwrap_or_default()
            .replace(" local government area", "")
            .replace(" lga", "");
        return Some(ClauseIntent::Reply(if ctx.lgas.is_empty() {
            "This data has no LGA for its wards (no LGA, LGAName, LGACode or orgunitlevel3 column in the data or the shapefile). Upload an LGA lookup (a CSV with WardName,LGA or LGACode,LGAName) and ask again.".to_string()
        } else {
            format!(
                "There is no LGA called \"{}\" in your data. The LGAs are: {}.",
                asked.trim(),
                ctx.lgas.join(", ")
            )
        }));
    }
    if let Some(lga) = &lga
        && (lga_word
            || t.any(&[
                "wards in",
                "wards of",
                "wards within",
                "wards inside",
                "wards that are in",
                "wards located in",
                "which wards are in",
                "wards belong",
                "wards belonging",
            ]))
        && nums.is_empty()
    {
        return Some(ClauseIntent::Call(ToolCall::WardsInLga {
            lga: lga.clone(),
        }));
    }

    // Grouped aggregates.
    let per_category = t.any(PER_CATEGORY);
    if (per_lga
        || per_category
        || t.any(&["grouped by", "group by", "broken down by", "breakdown by"]))
        && let Some(agg) = agg_word(t)
    {
        let by = if per_category {
            "vulnerability_category".to_string()
        } else if per_lga || lga_word {
            "LGA".to_string()
        } else {
            t.after(&["grouped by", "group by", "broken down by", "breakdown by"])
                .and_then(|rest| find_variables(&rest, &ctx.variables).first().cloned())
                .unwrap_or_else(|| "LGA".to_string())
        };
        let every = t.any(&[
            "every variable",
            "all variables",
            "each variable",
            "every column",
            "all columns",
            "everything",
            "all the variables",
        ]);
        // "total dumpsites" names the aggregate, not a column called `total`.
        let column = nums
            .iter()
            .find(|c| {
                !(nums.len() > 1 && c.eq_ignore_ascii_case(agg.label())
                    || c.eq_ignore_ascii_case("total") && nums.len() > 1)
            })
            .cloned();
        return Some(ClauseIntent::Call(ToolCall::GroupBy {
            by,
            agg,
            column: if every { None } else { column },
        }));
    }

    // Descriptive statistics (histogram / box plot by group).
    let describe_cue = t.any(&[
        "describe",
        "descriptive",
        "statistics",
        "stats",
        "summary statistics",
        "summary of",
        "histogram",
        "histograms",
        "spread",
        "standard deviation",
        "std",
        "quartiles",
        "percentiles",
        "mean and",
        "min and max",
        "range of",
        "how is",
        "distributed",
        "distribution",
        "summarise",
        "summarize",
        "box plot of",
        "boxplot of",
        "box plots of",
        "five number summary",
        "average",
        "mean",
        "median",
    ]);
    // "How is the composite score calculated?" asks about the method, not the column.
    let explains = t.any(&[
        "calculated",
        "computed",
        "calculate",
        "compute",
        "explain",
        "why",
        "meaning",
        "defined",
        "what does",
        "how does",
        "how do you",
    ]);
    if describe_cue
        && !explains
        && let Some(column) = all.first()
    {
        let by = if per_lga || (lga_word && t.any(&["by", "per", "across", "each"])) {
            Some("LGA".to_string())
        } else if per_category {
            Some("vulnerability_category".to_string())
        } else {
            None
        };
        // "distribution of X" alone stays the variable map.
        if !(t.any(&["distribution of", "spatial"])
            && by.is_none()
            && !t.any(&["histogram", "statistic", "statistics", "stats", "describe"]))
        {
            return Some(ClauseIntent::Call(ToolCall::Describe {
                column: column.clone(),
                by,
            }));
        }
    }

    // "describe elevation": a statistic of a column that is not there.
    if all.is_empty()
        && t.any(&[
            "describe",
            "histogram",
            "statistics",
            "stats",
            "summary statistics",
            "descriptive",
        ])
        && !t.any(&[
            "data",
            "dataset",
            "my data",
            "the data",
            "columns",
            "variables",
        ])
    {
        return Some(ClauseIntent::Reply(format!(
            "I couldn't find that column in your data. The numeric columns are: {}.",
            numeric
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    // Filters.
    if let Some(column) = nums.first()
        && let Some((op, value)) = comparison(t)
        && t.any(&[
            "wards",
            "ward",
            "which",
            "where",
            "list",
            "show",
            "filter",
            "find",
            "with",
            "whose",
            "that have",
            "having",
        ])
    {
        return Some(ClauseIntent::Call(ToolCall::Filter {
            column: column.clone(),
            op,
            value,
        }));
    }
    if t.any(&["where", "whose", "with"])
        && let Some(text_col) = ctx
            .variables
            .iter()
            .find(|v| v.kind == crate::context::VariableKind::Text && all.contains(&v.name))
        && let Some(rest) = t.after(&[" is ", "is", "equals", "="])
        && !rest.is_empty()
    {
        return Some(ClauseIntent::Call(ToolCall::Filter {
            column: text_col.name.clone(),
            op: FilterOp::Eq,
            value: rest,
        }));
    }

    // Top N by a column.
    let top_words = t.any(&[
        "top",
        "highest",
        "lowest",
        "bottom",
        "most",
        "least",
        "largest",
        "smallest",
        "greatest",
        "biggest",
        "maximum",
        "minimum",
        "best",
        "worst",
        "lowest values",
        "highest values",
        "rank wards by",
        "sort wards by",
        "order wards by",
    ]);
    if top_words && !nums.is_empty() && !vulnerability && !itn {
        let lowest = t.any(&["lowest", "bottom", "least", "smallest", "minimum", "fewest"]);
        let single = t.any(&[
            "which ward has",
            "which ward had",
            "what ward has",
            "which ward is",
        ]);
        let n = top_n(t).unwrap_or(if single { 1 } else { 10 });
        return Some(ClauseIntent::Call(ToolCall::TopN {
            column: nums[0].clone(),
            n,
            lowest,
            lga,
        }));
    }
    None
}

/// "top 5", "5 most", "bottom 20", "first 3", "ten highest".
fn top_n(t: &Text) -> Option<u32> {
    let toks = tokens(&t.raw);
    for n in find_numbers(&t.raw) {
        if n.percent {
            continue;
        }
        let before = n
            .start
            .checked_sub(1)
            .and_then(|i| toks.get(i))
            .map(String::as_str);
        let after = toks.get(n.end).map(String::as_str);
        let near = matches!(before, Some("top" | "bottom" | "first" | "last" | "the"))
            || matches!(
                after,
                Some(
                    "most"
                        | "highest"
                        | "lowest"
                        | "least"
                        | "wards"
                        | "ward"
                        | "riskiest"
                        | "worst"
                        | "best"
                        | "high"
                        | "low"
                )
            );
        if near && n.value >= 1.0 && n.value.fract() == 0.0 && n.value <= 100_000.0 {
            return Some(n.value as u32);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ward_table_questions_are_told_from_the_tpr_workflow() {
        let ctx = SessionContext {
            data_loaded: true,
            tpr_loaded: true,
            wards: vec!["Dala".into(), "Gwale".into()],
            lgas: vec!["Dala".into(), "Gwale".into()],
            variables: ["TPR", "rainfall"]
                .iter()
                .map(|n| VariableInfo {
                    name: n.to_string(),
                    kind: crate::context::VariableKind::Numeric,
                    completeness_pct: 100.0,
                })
                .collect(),
            ..Default::default()
        };
        for ward_table in [
            "which LGA has the highest TPR?",
            "top 5 wards by TPR",
            "correlate TPR and rainfall",
            "average TPR by LGA",
            "wards with TPR above 50",
        ] {
            assert!(explores_ward_table(ward_table, &ctx), "{ward_table}");
        }
        for tpr in [
            "which wards are worsening?",
            "calculate TPR for all ages, all facility levels, both methods",
            "missing data by year",
            "reprioritise 14 wards",
            "start the tpr workflow",
            "map TPR",
        ] {
            assert!(!explores_ward_table(tpr, &ctx), "{tpr}");
        }
        let no_table = SessionContext {
            data_loaded: false,
            ..ctx
        };
        assert!(!explores_ward_table(
            "which LGA has the highest TPR?",
            &no_table
        ));
    }

    #[test]
    fn clauses_split_on_connectives_only() {
        assert_eq!(
            split_clauses("analyse and then plan ITN with 50k nets"),
            ["analyse", "plan ITN with 50k nets"]
        );
        assert_eq!(
            split_clauses("plan ITN with 50k nets and household size 6"),
            ["plan ITN with 50k nets and household size 6"]
        );
        assert_eq!(
            split_clauses("compare Dala and Fagge A"),
            ["compare Dala and Fagge A"]
        );
        assert_eq!(
            split_clauses("run the analysis and plan ITN with 50000 nets"),
            ["run the analysis", "plan ITN with 50000 nets"]
        );
        assert_eq!(
            split_clauses("I've uploaded my data, what's in it?"),
            ["I've uploaded my data,", "what's in it?"]
        );
        assert_eq!(
            split_clauses("I have 120,000 nets. Plan it."),
            ["I have 120,000 nets.", "Plan it."]
        );
    }
}
