//! Cost of the rule-based interpreter per message (classification, number and name matching,
//! guards) on the Kano context (66 wards, 10 columns). Run: `cargo bench -p mrpt-interpreter`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use mrpt_interpreter::{SessionContext, parse_tool_call, plan_with_rules, system_prompt};

const MESSAGES: &[&str] = &[
    "I've uploaded my data, what's in it?",
    "run the malaria risk analysis",
    "plan ITN distribution with 120000 nets",
    "show me the vulnerability map",
    "which wards are most at risk?",
    "why is Zango ranked first?",
    "compare Dala and Fagge A",
    "how is the composite score calculated?",
    "analyse and then plan ITN with 50k nets and household size 6",
    "tell me a joke",
];

fn main() {
    let ctx: SessionContext =
        serde_json::from_str(include_str!("../tests/fixtures/kano_post_analysis.json")).unwrap();
    for _ in 0..20 {
        for m in MESSAGES {
            black_box(plan_with_rules(m, &ctx));
        }
    }
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        for m in MESSAGES {
            black_box(plan_with_rules(black_box(m), &ctx));
        }
    }
    let per = start.elapsed() / (rounds * MESSAGES.len() as u32);
    println!(
        "plan_with_rules: {per:?} per message (mean of {} messages)",
        rounds as usize * MESSAGES.len()
    );
    for m in MESSAGES {
        let start = Instant::now();
        for _ in 0..rounds {
            black_box(plan_with_rules(black_box(m), &ctx));
        }
        println!("  {:>10?}  {m}", start.elapsed() / rounds);
    }
    let start = Instant::now();
    for _ in 0..rounds * 10 {
        black_box(
            parse_tool_call("compare_wards", r#"{"a": "dala", "b": "Fagge A"}"#, &ctx).unwrap(),
        );
    }
    println!(
        "parse_tool_call(compare_wards): {:?}",
        start.elapsed() / (rounds * 10)
    );
    let start = Instant::now();
    for _ in 0..rounds * 10 {
        black_box(system_prompt(&ctx));
    }
    println!(
        "system_prompt: {:?} ({} bytes)",
        start.elapsed() / (rounds * 10),
        system_prompt(&ctx).len()
    );
}
