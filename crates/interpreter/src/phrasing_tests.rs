//! Phrasing tables for the rule-based interpreter and regressions for the guards (H4, H10, H11),
//! against a context built from the real Kano data (tests/fixtures/kano_post_analysis.json).

use crate::context::{Pending, SessionContext};
use crate::guards::apply_guards;
use crate::interpreter::plan_with_rules;
use crate::plan::Plan;
use crate::tools::{ExplainTopic, MapMethod, ToolCall, ToolName};
use mrpt_table::{ItnStrategy, RankingMethod};

fn post() -> SessionContext {
    serde_json::from_str(include_str!("../tests/fixtures/kano_post_analysis.json")).unwrap()
}

fn pre() -> SessionContext {
    SessionContext {
        analysis_complete: false,
        analysis_id: None,
        variables_used: vec![],
        top_wards: vec![],
        files: vec![],
        ..post()
    }
}

fn plan(msg: &str, ctx: &SessionContext) -> Plan {
    plan_with_rules(msg, ctx)
}

fn only_call(msg: &str, ctx: &SessionContext) -> ToolCall {
    let p = plan(msg, ctx);
    assert_eq!(p.calls.len(), 1, "{msg:?} -> {p:#?}");
    p.calls[0].clone()
}

fn run(variables: Option<&[&str]>, exclude: &[&str], force: bool) -> ToolCall {
    ToolCall::RunAnalysis {
        variables: variables.map(|v| v.iter().map(|s| s.to_string()).collect()),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        force,
    }
}

fn itn(
    total: u64,
    hh: Option<f64>,
    urban: Option<f64>,
    method: RankingMethod,
    strategy: Option<ItnStrategy>,
) -> ToolCall {
    ToolCall::PlanItn {
        total_nets: total,
        avg_household_size: hh,
        urban_threshold: urban,
        method,
        strategy,
    }
}

#[test]
fn analysis_phrasings() {
    let ctx = pre();
    let plain = run(None, &[], false);
    let table: &[(&str, ToolCall)] = &[
        ("run the malaria risk analysis", plain.clone()),
        ("Run the analysis", plain.clone()),
        ("analyse my data", plain.clone()),
        ("Please analyze the data", plain.clone()),
        ("can you do a vulnerability analysis?", plain.clone()),
        ("rank the wards by malaria risk", plain.clone()),
        ("start the risk analysis", plain.clone()),
        ("perform the analysis now", plain.clone()),
        ("I want to run a risk assessment", plain.clone()),
        ("let's analyse this", plain.clone()),
        ("go ahead and run the analysis", plain.clone()),
        ("malaria risk analysis please", plain.clone()),
        (
            "analyse using rainfall and tpr",
            run(Some(&["rainfall", "test_positivity_rate"]), &[], false),
        ),
        (
            "what if we exclude rainfall?",
            run(None, &["rainfall"], false),
        ),
        (
            "run the analysis without housing quality",
            run(None, &["housing_quality"], false),
        ),
        (
            "run the analysis with rainfall, evi and distance to water but exclude dumpsites",
            run(
                Some(&[
                    "rainfall",
                    "enhanced_vegetation_index",
                    "distance_to_water_bodies",
                ]),
                &["dumpsites"],
                false,
            ),
        ),
    ];
    for (msg, want) in table {
        assert_eq!(&only_call(msg, &ctx), want, "{msg}");
    }
}

#[test]
fn unknown_variable_is_explained_not_run() {
    let p = plan("what if we exclude elevation?", &pre());
    assert!(p.calls.is_empty(), "{p:#?}");
    let reply = p.reply_without_tools.unwrap();
    assert!(
        reply.contains("elevation") && reply.contains("not a column"),
        "{reply}"
    );
    assert!(reply.contains("rainfall"));
}

#[test]
fn itn_phrasings() {
    let ctx = post();
    let c = RankingMethod::Composite;
    let table: &[(&str, ToolCall)] = &[
        (
            "plan ITN distribution with 120000 nets",
            itn(120_000, None, None, c, None),
        ),
        (
            "I have 120,000 nets for Kano, help me distribute them",
            itn(120_000, None, None, c, None),
        ),
        ("I have 10000 nets", itn(10_000, None, None, c, None)),
        (
            "Plan ITN with 10000 nets and household size 5",
            itn(10_000, Some(5.0), None, c, None),
        ),
        ("distribute 50k bed nets", itn(50_000, None, None, c, None)),
        (
            "allocate 1.2 million LLINs",
            itn(1_200_000, None, None, c, None),
        ),
        (
            "we have one hundred thousand mosquito nets, plan the distribution",
            itn(100_000, None, None, c, None),
        ),
        (
            "ITN planning: 75,000 nets, 6 people per household",
            itn(75_000, Some(6.0), None, c, None),
        ),
        (
            "help me plan bed net distribution for 200000 nets using pca",
            itn(200_000, None, None, RankingMethod::Pca, None),
        ),
        (
            "plan the net campaign with 30000 nets, urban threshold 40%",
            itn(30_000, None, Some(40.0), c, None),
        ),
        (
            "ten thousand nets please, rural first",
            itn(10_000, None, None, c, Some(ItnStrategy::RuralFirst)),
        ),
        (
            "How should I distribute 80000 ITNs?",
            itn(80_000, None, None, c, None),
        ),
        (
            "plan itn with 2.5m nets",
            itn(2_500_000, None, None, c, None),
        ),
    ];
    for (msg, want) in table {
        assert_eq!(&only_call(msg, &ctx), want, "{msg}");
    }
}

#[test]
fn itn_without_a_total_asks_and_the_answer_lands_on_any_worker() {
    // H10: no default total is assumed.
    let ctx = post();
    for msg in [
        "plan ITN distribution",
        "help me distribute bed nets",
        "I want to plan the LLIN campaign with household size 6",
    ] {
        let p = plan(msg, &ctx);
        assert!(p.calls.is_empty(), "{msg}: {p:#?}");
        assert!(
            p.reply_without_tools
                .as_deref()
                .unwrap_or("")
                .contains("number of nets")
        );
        assert!(matches!(p.pending, Some(Pending::NetTotal { .. })), "{msg}");
    }
    let asked = plan("plan ITN with household size 6", &ctx);
    // The pending question is all that carries over, as it would through the session folder.
    let next = SessionContext {
        pending: asked.pending.clone(),
        ..post()
    };
    assert_eq!(
        only_call("100000", &next),
        itn(100_000, Some(6.0), None, RankingMethod::Composite, None)
    );
    assert_eq!(
        only_call("I have 10000", &next),
        itn(10_000, Some(6.0), None, RankingMethod::Composite, None)
    );
    let still = plan("household size 7", &next);
    assert!(still.calls.is_empty());
    assert!(
        matches!(still.pending, Some(Pending::NetTotal { ref draft }) if draft.avg_household_size == Some(7.0))
    );
}

#[test]
fn map_phrasings() {
    let ctx = SessionContext {
        itn_complete: true,
        ..post()
    };
    let vm = |m| ToolCall::VulnerabilityMap { method: m };
    let var = |v: &str| ToolCall::VariableMap {
        variable: v.to_string(),
    };
    let table: &[(&str, ToolCall)] = &[
        ("show me the vulnerability map", vm(MapMethod::Composite)),
        ("show the risk map", vm(MapMethod::Composite)),
        ("map the vulnerability using PCA", vm(MapMethod::Pca)),
        (
            "show composite and pca maps side by side",
            vm(MapMethod::Both),
        ),
        ("visualise the risk", vm(MapMethod::Composite)),
        ("can I see the PCA vulnerability map?", vm(MapMethod::Pca)),
        ("compare composite and pca maps", vm(MapMethod::Both)),
        ("show me the map", vm(MapMethod::Composite)),
        ("where are the hotspots?", vm(MapMethod::Composite)),
        ("map rainfall", var("rainfall")),
        (
            "plot test positivity rate on a map",
            var("test_positivity_rate"),
        ),
        ("show the distribution of tpr", var("test_positivity_rate")),
        ("visualize housing quality", var("housing_quality")),
        ("map nets per capita", var("nets_per_capita")),
        ("show the ITN map", ToolCall::ItnMap),
        ("map the net distribution", ToolCall::ItnMap),
        ("show me the box plot", ToolCall::BoxPlot { page: 1 }),
        ("box plots page 2", ToolCall::BoxPlot { page: 2 }),
    ];
    for (msg, want) in table {
        assert_eq!(&only_call(msg, &ctx), want, "{msg}");
    }
}

#[test]
fn top_ward_phrasings() {
    let ctx = post();
    let top = |n, bottom, decile, method| ToolCall::TopWards {
        n,
        bottom,
        decile,
        method,
    };
    let c = RankingMethod::Composite;
    let table: &[(&str, ToolCall)] = &[
        ("which wards are most at risk?", top(10, false, false, c)),
        ("top 10 wards", top(10, false, false, c)),
        ("show the top 5 highest risk wards", top(5, false, false, c)),
        (
            "list the 20 most vulnerable wards",
            top(20, false, false, c),
        ),
        ("what are the bottom 5 wards", top(5, true, false, c)),
        ("lowest risk wards", top(10, true, false, c)),
        ("show the top decile", top(7, false, true, c)),
        ("give me the high risk wards", top(10, false, false, c)),
        (
            "which wards should be prioritised first?",
            top(10, false, false, c),
        ),
        (
            "top 3 wards by pca",
            top(3, false, false, RankingMethod::Pca),
        ),
        ("show me the rankings", top(10, false, false, c)),
        ("worst 15 wards", top(15, false, false, c)),
        ("rank the wards", top(10, false, false, c)),
        ("top 500 wards", top(66, false, false, c)),
    ];
    for (msg, want) in table {
        assert_eq!(&only_call(msg, &ctx), want, "{msg}");
    }
}

#[test]
fn explain_phrasings() {
    for ctx in [pre(), post()] {
        let table: &[(&str, ExplainTopic)] = &[
            (
                "how is the composite score calculated?",
                ExplainTopic::Composite,
            ),
            ("what is PCA?", ExplainTopic::Pca),
            ("explain the methodology", ExplainTopic::General),
            (
                "how do you handle missing values?",
                ExplainTopic::Imputation,
            ),
            ("what does normalisation mean?", ExplainTopic::Normalisation),
            ("how are nets allocated?", ExplainTopic::Itn),
            (
                "what's the difference between composite and pca",
                ExplainTopic::General,
            ),
            ("how are the wards ranked?", ExplainTopic::General),
            ("explain principal component analysis", ExplainTopic::Pca),
            ("how does imputation work", ExplainTopic::Imputation),
            (
                "why do you normalize the variables?",
                ExplainTopic::Normalisation,
            ),
            ("how does the analysis work?", ExplainTopic::General),
            ("explain the composite score", ExplainTopic::Composite),
        ];
        for (msg, topic) in table {
            assert_eq!(
                only_call(msg, &ctx),
                ToolCall::ExplainMethod { topic: *topic },
                "{msg}"
            );
        }
    }
    // Explanations need no data at all.
    let none = SessionContext::default();
    assert_eq!(
        only_call("what is PCA?", &none),
        ToolCall::ExplainMethod {
            topic: ExplainTopic::Pca
        }
    );
}

#[test]
fn ward_phrasings() {
    let ctx = post();
    let detail = |w: &str| ToolCall::WardDetail {
        ward: w.to_string(),
    };
    let table: &[(&str, ToolCall)] = &[
        ("why is Zango ranked first?", detail("Zango")),
        ("tell me about Dala", detail("Dala")),
        ("Is Fagge A high risk?", detail("Fagge A")),
        ("why is zangoo ranked so high", detail("Zango")),
        (
            "what drives the score of Sabon Gari West?",
            detail("Sabon Gari West"),
        ),
        ("Gwale", detail("Gwale")),
        (
            "compare Dala and Fagge A",
            ToolCall::CompareWards {
                a: "Dala".into(),
                b: "Fagge A".into(),
            },
        ),
        (
            "Dala vs Gwale",
            ToolCall::CompareWards {
                a: "Dala".into(),
                b: "Gwale".into(),
            },
        ),
    ];
    for (msg, want) in table {
        assert_eq!(&only_call(msg, &ctx), want, "{msg}");
    }
    let p = plan("why is Atlantis ranked first?", &ctx);
    assert!(p.calls.is_empty());
    assert!(
        p.reply_without_tools
            .unwrap()
            .contains("couldn't find a ward called \"atlantis\"")
    );
}

#[test]
fn data_export_and_help_phrasings() {
    let ctx = pre();
    for msg in [
        "I've uploaded my data, what's in it?",
        "what variables do I have?",
        "show me the columns",
        "summarise the data",
        "how is the data quality?",
        "are there missing values?",
        "how many wards are there?",
        "__DATA_UPLOADED__",
    ] {
        assert_eq!(only_call(msg, &ctx), ToolCall::DataSummary, "{msg}");
    }
    for msg in [
        "download the results",
        "export the package",
        "generate a report",
        "give me a zip file",
    ] {
        assert_eq!(only_call(msg, &post()), ToolCall::ExportPackage, "{msg}");
    }
    for msg in [
        "hello",
        "what can you do?",
        "asdf qwerty",
        "tell me a joke",
        "yes",
    ] {
        let p = plan(msg, &ctx);
        assert!(p.calls.is_empty(), "{msg}: {p:#?}");
        let reply = p.reply_without_tools.unwrap_or_default();
        assert!(
            reply.contains("run the malaria risk analysis"),
            "{msg}: {reply}"
        );
        assert!(reply.contains("map"), "{msg}");
    }
}

#[test]
fn analyse_and_then_plan_runs_both_in_order() {
    let ctx = pre();
    let p = plan("analyse and then plan ITN with 50k nets", &ctx);
    assert_eq!(
        p.calls,
        [
            run(None, &[], false),
            itn(50_000, None, None, RankingMethod::Composite, None)
        ]
    );
    let p = plan("plan ITN with 50000 nets after running the analysis", &ctx);
    assert_eq!(p.calls.len(), 2, "{p:#?}");
    assert!(matches!(p.calls[0], ToolCall::RunAnalysis { .. }));
    let p = plan("run the analysis and show the vulnerability map", &ctx);
    assert_eq!(
        p.calls,
        [
            run(None, &[], false),
            ToolCall::VulnerabilityMap {
                method: MapMethod::Composite
            }
        ]
    );
    let p = plan("plan ITN with 40000 nets and then show the map", &post());
    assert_eq!(
        p.calls,
        [
            itn(40_000, None, None, RankingMethod::Composite, None),
            ToolCall::ItnMap
        ]
    );
}

// ---- Guards -------------------------------------------------------------------------------

#[test]
fn h4_itn_after_analysis_never_reruns_whoever_proposed_it() {
    let ctx = post();
    // As the Flask model did: analysis first "to be safe", even forced.
    for force in [false, true] {
        let p = apply_guards(
            &ctx,
            "plan ITN with 50000 nets, household size 5",
            vec![
                run(None, &[], force),
                itn(50_000, Some(5.0), None, RankingMethod::Composite, None),
            ],
        );
        assert_eq!(
            p.calls,
            [itn(50_000, Some(5.0), None, RankingMethod::Composite, None)]
        );
        assert!(
            p.notes.iter().any(|n| n.contains("gen-1-a3f9")),
            "{:?}",
            p.notes
        );
    }
    for msg in [
        "show me the vulnerability map",
        "which wards are most at risk?",
        "why is Zango ranked first?",
    ] {
        let rules = plan(msg, &ctx);
        assert!(
            rules
                .calls
                .iter()
                .all(|c| c.name() != ToolName::RunAnalysis),
            "{msg}"
        );
        let model = apply_guards(&ctx, msg, vec![run(None, &[], true)]);
        assert!(model.calls.is_empty(), "{msg}");
        assert!(
            model
                .reply_without_tools
                .unwrap()
                .contains("already complete")
        );
    }
    // A plain "run the analysis" after completion answers from disk.
    let p = plan("run the malaria risk analysis", &ctx);
    assert!(p.calls.is_empty());
    let reply = p.reply_without_tools.unwrap();
    assert!(
        reply.contains("already complete") && reply.contains("Zango"),
        "{reply}"
    );
}

#[test]
fn explicit_rerun_or_new_variables_do_run() {
    let ctx = post();
    assert_eq!(only_call("re-run the analysis", &ctx), run(None, &[], true));
    assert_eq!(
        only_call("run the analysis again", &ctx),
        run(None, &[], true)
    );
    assert_eq!(
        only_call("what if we exclude rainfall?", &ctx),
        run(None, &["rainfall"], false)
    );
    assert_eq!(
        only_call("run the analysis using tpr and housing quality", &ctx),
        run(
            Some(&["test_positivity_rate", "housing_quality"]),
            &[],
            false
        )
    );
    // Same variables as last time, not re-run.
    let used: Vec<&str> = ctx.variables_used.iter().map(String::as_str).collect();
    let p = apply_guards(
        &ctx,
        "run it with the same variables",
        vec![run(Some(&used), &[], false)],
    );
    assert!(p.calls.is_empty());
}

#[test]
fn before_analysis_itn_and_maps_offer_the_analysis() {
    let ctx = pre();
    let p = plan("plan ITN with 50000 nets", &ctx);
    assert!(p.calls.is_empty(), "{p:#?}");
    let reply = p.reply_without_tools.clone().unwrap();
    assert!(
        reply.contains("analysis has to be run first") && reply.contains("50,000"),
        "{reply}"
    );
    let Some(Pending::RunAnalysis { then }) = &p.pending else {
        panic!("{p:#?}")
    };
    assert_eq!(
        then,
        &[itn(50_000, None, None, RankingMethod::Composite, None)]
    );
    // "yes" on another worker: the pending offer came back from disk.
    let next = SessionContext {
        pending: p.pending.clone(),
        ..pre()
    };
    let yes = plan("yes please", &next);
    assert_eq!(
        yes.calls,
        [
            run(None, &[], false),
            itn(50_000, None, None, RankingMethod::Composite, None)
        ]
    );
    let no = plan("no, not now", &next);
    assert!(no.calls.is_empty());
    assert!(no.pending.is_none());

    for msg in [
        "show me the vulnerability map",
        "top 10 wards",
        "why is Zango ranked first?",
        "download the results",
    ] {
        let p = plan(msg, &ctx);
        assert!(p.calls.is_empty(), "{msg}");
        assert!(
            matches!(p.pending, Some(Pending::RunAnalysis { .. })),
            "{msg}"
        );
    }
    // Variable maps need no analysis.
    assert_eq!(
        only_call("map rainfall", &ctx),
        ToolCall::VariableMap {
            variable: "rainfall".into()
        }
    );
}

#[test]
fn h10_model_invented_net_total_is_not_used() {
    let ctx = post();
    let invented = itn(10_000, None, None, RankingMethod::Composite, None);
    let p = apply_guards(&ctx, "plan ITN distribution", vec![invented.clone()]);
    assert!(p.calls.is_empty());
    assert!(p.reply_without_tools.unwrap().contains("number of nets"));
    assert!(matches!(p.pending, Some(Pending::NetTotal { .. })));
    let p = apply_guards(
        &ctx,
        "Plan ITN with 10000 nets and household size 5",
        vec![invented.clone()],
    );
    assert_eq!(p.calls, std::slice::from_ref(&invented));
    let p = apply_guards(&ctx, "I have ten thousand nets", vec![invented.clone()]);
    assert_eq!(p.calls, [invented]);
}

#[test]
fn no_data_no_shapefile_no_itn_plan() {
    let none = SessionContext::default();
    let p = plan("run the malaria risk analysis", &none);
    assert!(p.calls.is_empty());
    assert!(p.reply_without_tools.unwrap().contains("upload"));
    let no_shp = SessionContext {
        shapefile_loaded: false,
        ..post()
    };
    let p = plan("show me the vulnerability map", &no_shp);
    assert!(p.calls.is_empty());
    assert!(p.reply_without_tools.unwrap().contains("shapefile"));
    let p = plan("show the ITN map", &post());
    assert!(p.calls.is_empty());
    assert!(
        p.reply_without_tools
            .unwrap()
            .contains("no ITN distribution plan")
    );
}

#[test]
fn h11_every_emitted_call_is_in_the_catalogue() {
    let ctx = post();
    let messages = [
        "run the analysis again",
        "plan ITN with 5000 nets",
        "show the vulnerability map",
        "map rainfall",
        "box plot",
        "top 10 wards",
        "why is Zango ranked first",
        "compare Dala and Gwale",
        "what is pca",
        "what's in my data",
        "download",
    ];
    for msg in messages {
        for call in plan(msg, &ctx).calls {
            assert!(ToolName::ALL.contains(&call.name()));
            // The app can round-trip every call through the same parser a model's call takes.
            let back = crate::tools::parse_tool_call(
                call.name().as_str(),
                &call.arguments_json().to_string(),
                &ctx,
            )
            .unwrap();
            assert_eq!(back, call);
        }
    }
}

#[test]
fn questions_routed_to_the_nearest_tool() {
    let ctx = post();
    let table: &[(&str, ToolCall)] = &[
        (
            "What is the test positivity rate in Zango?",
            ToolCall::WardDetail {
                ward: "Zango".into(),
            },
        ),
        (
            "Which ward has the highest rainfall?",
            ToolCall::TopN {
                column: "rainfall".into(),
                n: 1,
                lowest: false,
                lga: None,
            },
        ),
        (
            "compare the composite and pca rankings",
            ToolCall::VulnerabilityMap {
                method: MapMethod::Both,
            },
        ),
        (
            "Can you show me which wards need nets most urgently?",
            ToolCall::TopWards {
                n: 10,
                bottom: false,
                decile: false,
                method: RankingMethod::Composite,
            },
        ),
        ("show me the data", ToolCall::DataSummary),
        (
            "what does the vulnerability category mean?",
            ToolCall::ExplainMethod {
                topic: ExplainTopic::General,
            },
        ),
        (
            "Use only tpr and rainfall for the analysis",
            run(Some(&["test_positivity_rate", "rainfall"]), &[], false),
        ),
    ];
    for (msg, want) in table {
        assert_eq!(&only_call(msg, &ctx), want, "{msg}");
    }
    // A count of people is not a count of nets.
    let p = plan("plan nets for 150 000 people", &ctx);
    assert!(p.calls.is_empty());
    assert!(matches!(p.pending, Some(Pending::NetTotal { .. })));
    let p = plan("what variables were used in the analysis?", &ctx);
    assert!(p.calls.is_empty());
    assert!(p.reply_without_tools.unwrap().contains("used 5 variables"));
    // Analysis asked for again alongside another request: the request runs, with a word why
    // nothing was recomputed.
    let p = plan("analyse the data and show me the top 10 wards", &ctx);
    assert!(matches!(p.calls[..], [ToolCall::TopWards { .. }]));
    assert!(p.reply_without_tools.unwrap().contains("already complete"));
}

#[test]
fn analysis_variables_must_be_numeric_and_few() {
    let ctx = post();
    let r = crate::tools::parse_tool_call(
        "run_analysis",
        r#"{"variables": ["WardName", "rainfall"]}"#,
        &ctx,
    )
    .unwrap_err();
    assert!(r.reason.contains("text column"), "{}", r.reason);
    let many: Vec<String> = (0..16).map(|_| "rainfall".to_string()).collect();
    // Duplicates collapse, so this is one variable and fine.
    let args = serde_json::json!({ "variables": many }).to_string();
    assert!(crate::tools::parse_tool_call("run_analysis", &args, &ctx).is_ok());
}

#[tokio::test]
async fn answers_to_pending_questions_never_wait_for_a_model() {
    // The model server does not exist; a confirmation must not even try it.
    let config = crate::OpenAiConfig {
        base_url: "http://127.0.0.1:9/v1".into(),
        timeout_ms: 60_000,
        ..Default::default()
    };
    let interp = crate::Interpreter::openai(config).unwrap();
    let ctx = SessionContext {
        pending: Some(Pending::RunAnalysis {
            then: vec![itn(50_000, None, None, RankingMethod::Composite, None)],
        }),
        ..pre()
    };
    let p = interp.plan("yes", &ctx).await;
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    assert_eq!(p.calls.len(), 2);
}

#[test]
fn odd_input_never_panics() {
    let long = "nets and wards and Zango ".repeat(2_000);
    let inputs = [
        "",
        "   ",
        "🦟🦟🦟",
        "1,,,000 nets",
        "nets 99999999999999999999999999 nets",
        "plan itn with -5 nets",
        "plan itn with 0 nets",
        "top 0 wards",
        "top -3 wards",
        "page 0 box plot",
        "Ward\u{0}Name",
        "analyse analyse analyse and then and then",
        "why is  ranked",
        "compare and",
        long.as_str(),
    ];
    for ctx in [SessionContext::default(), pre(), post()] {
        for m in inputs {
            let p = plan(m, &ctx);
            assert!(p.calls.len() <= crate::MAX_CALLS);
            assert!(
                p.calls
                    .iter()
                    .all(|c| !matches!(c, ToolCall::PlanItn { total_nets: 0, .. }))
            );
        }
    }
}

/// The Kano context with its six LGAs (named through the LGA lookup) and, after the analysis,
/// the unified table's category column.
fn kano_lgas(analysed: bool) -> SessionContext {
    let mut ctx = if analysed { post() } else { pre() };
    ctx.lgas = [
        "Dala",
        "Fagge",
        "Gwale",
        "Kano Municipal",
        "Nassarawa",
        "Tarauni",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ctx.variables.push(crate::context::VariableInfo {
        name: "vulnerability_category".into(),
        kind: crate::context::VariableKind::Text,
        completeness_pct: 100.0,
    });
    ctx.variables.push(crate::context::VariableInfo {
        name: "composite_score".into(),
        kind: crate::context::VariableKind::Numeric,
        completeness_pct: 100.0,
    });
    ctx.itn_complete = analysed;
    ctx
}

fn check_table(ctx: &SessionContext, table: &[(&str, ToolCall)]) {
    let mut failures = Vec::new();
    for (msg, want) in table {
        let p = plan(msg, ctx);
        if p.calls.len() != 1 || &p.calls[0] != want {
            failures.push(format!(
                "{msg:?}\n  want {want:?}\n  got {:?} / {:?}",
                p.calls, p.reply_without_tools
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn lga_ranking_phrasings() {
    use ToolCall::LgaRanking;
    let ctx = kano_lgas(true);
    let vul = LgaRanking { variable: None };
    let tpr = LgaRanking {
        variable: Some(s("test_positivity_rate")),
    };
    check_table(
        &ctx,
        &[
            ("rank the LGAs", vul.clone()),
            ("which LGAs are most vulnerable?", vul.clone()),
            ("average risk per LGA", vul.clone()),
            ("LGA ranking please", vul.clone()),
            ("show me the LGA rankings", vul.clone()),
            ("which local governments are most at risk", vul.clone()),
            ("compare the LGAs by vulnerability", vul.clone()),
            ("what is the risk score for each LGA", vul.clone()),
            ("which LGAs got worse", vul.clone()),
            ("order the local government areas by risk", vul.clone()),
            ("rank the LGAs by test positivity rate", tpr.clone()),
            ("which LGAs have the highest tpr", tpr.clone()),
        ],
    );
}

#[test]
fn wards_in_lga_phrasings() {
    let ctx = kano_lgas(true);
    let fagge = ToolCall::WardsInLga { lga: s("Fagge") };
    let km = ToolCall::WardsInLga {
        lga: s("Kano Municipal"),
    };
    check_table(
        &ctx,
        &[
            ("wards in Fagge LGA", fagge.clone()),
            ("list the wards of Fagge", fagge.clone()),
            ("which wards are in fagge?", fagge.clone()),
            ("show me Fagge LGA", fagge.clone()),
            ("what wards does Fagge LGA have", fagge.clone()),
            ("wards within Fagge", fagge.clone()),
            ("Fagge local government wards", fagge.clone()),
            ("wards in kano municipal", km.clone()),
            ("list wards belonging to Kano Municipal LGA", km.clone()),
            ("give me the wards of Kano Municipal", km.clone()),
        ],
    );
}

#[test]
fn lga_itn_phrasings() {
    let ctx = kano_lgas(true);
    check_table(
        &ctx,
        &[
            ("ITN totals per LGA", ToolCall::LgaItn),
            ("how many nets does each LGA get?", ToolCall::LgaItn),
            ("nets by LGA", ToolCall::LgaItn),
            ("net distribution per LGA", ToolCall::LgaItn),
            ("show the ITN plan by local government", ToolCall::LgaItn),
            ("bed nets allocated to each LGA", ToolCall::LgaItn),
            ("LLIN totals across LGAs", ToolCall::LgaItn),
            ("how are the nets split across the LGAs", ToolCall::LgaItn),
            ("people covered by nets in every LGA", ToolCall::LgaItn),
            ("ITN allocation summary per LGA", ToolCall::LgaItn),
        ],
    );
}

#[test]
fn urban_extent_phrasings() {
    let ctx = kano_lgas(true);
    let default = ToolCall::UrbanExtentMap { threshold: None };
    let t = |v: f64| ToolCall::UrbanExtentMap { threshold: Some(v) };
    check_table(
        &ctx,
        &[
            ("show the urban extent map", default.clone()),
            ("urban extent", default.clone()),
            ("map the urban areas", default.clone()),
            ("urban map please", default.clone()),
            ("show only urban wards", default.clone()),
            ("urban extent map with threshold 30", t(30.0)),
            ("urban extent at 70%", t(70.0)),
            ("map urban wards above 60 percent", t(60.0)),
            ("fade rural wards on the vulnerability map", default.clone()),
            ("urbanization map", default.clone()),
        ],
    );
}

#[test]
fn describe_phrasings() {
    let ctx = kano_lgas(true);
    let d = |c: &str, by: Option<&str>| ToolCall::Describe {
        column: s(c),
        by: by.map(s),
    };
    check_table(
        &ctx,
        &[
            ("describe rainfall", d("rainfall", None)),
            (
                "summary statistics for tpr",
                d("test_positivity_rate", None),
            ),
            (
                "give me descriptive stats of housing quality",
                d("housing_quality", None),
            ),
            ("histogram of rainfall", d("rainfall", None)),
            ("what is the average rainfall?", d("rainfall", None)),
            ("how is rainfall distributed?", d("rainfall", None)),
            (
                "describe tpr by LGA",
                d("test_positivity_rate", Some("LGA")),
            ),
            ("statistics of rainfall per LGA", d("rainfall", Some("LGA"))),
            (
                "box plot of tpr by LGA",
                d("test_positivity_rate", Some("LGA")),
            ),
            (
                "describe composite score by vulnerability category",
                d("composite_score", Some("vulnerability_category")),
            ),
            (
                "what is the median and spread of dumpsites",
                d("dumpsites", None),
            ),
        ],
    );
}

#[test]
fn filter_phrasings() {
    let ctx = kano_lgas(true);
    let f = |c: &str, op: FilterOp, v: &str| ToolCall::Filter {
        column: s(c),
        op,
        value: s(v),
    };
    use mrpt_table::explore::FilterOp;
    check_table(
        &ctx,
        &[
            (
                "wards with tpr above 0.5",
                f("test_positivity_rate", FilterOp::Gt, "0.5"),
            ),
            (
                "which wards have rainfall below 5?",
                f("rainfall", FilterOp::Lt, "5"),
            ),
            (
                "list wards where housing quality is greater than 6",
                f("housing_quality", FilterOp::Gt, "6"),
            ),
            (
                "show wards with dumpsites at least 4",
                f("dumpsites", FilterOp::Ge, "4"),
            ),
            (
                "filter wards with tpr over 0.7",
                f("test_positivity_rate", FilterOp::Gt, "0.7"),
            ),
            (
                "find wards whose rainfall is less than 3.5",
                f("rainfall", FilterOp::Lt, "3.5"),
            ),
            (
                "wards where tpr >= 0.6",
                f("test_positivity_rate", FilterOp::Ge, "0.6"),
            ),
            (
                "which wards have nets per capita under 2",
                f("nets_per_capita", FilterOp::Lt, "2"),
            ),
            (
                "wards with distance to water bodies at most 5",
                f("distance_to_water_bodies", FilterOp::Le, "5"),
            ),
            (
                "wards where vulnerability category is High Risk",
                f("vulnerability_category", FilterOp::Eq, "high risk"),
            ),
        ],
    );
}

#[test]
fn group_by_phrasings() {
    let ctx = kano_lgas(true);
    use mrpt_table::explore::Agg;
    let g = |by: &str, agg: Agg, c: Option<&str>| ToolCall::GroupBy {
        by: s(by),
        agg,
        column: c.map(s),
    };
    check_table(
        &ctx,
        &[
            (
                "average rainfall per LGA",
                g("LGA", Agg::Mean, Some("rainfall")),
            ),
            (
                "mean tpr by LGA",
                g("LGA", Agg::Mean, Some("test_positivity_rate")),
            ),
            (
                "total dumpsites per LGA",
                g("LGA", Agg::Sum, Some("dumpsites")),
            ),
            (
                "median housing quality for each LGA",
                g("LGA", Agg::Median, Some("housing_quality")),
            ),
            (
                "maximum rainfall in each LGA",
                g("LGA", Agg::Max, Some("rainfall")),
            ),
            (
                "minimum tpr per LGA",
                g("LGA", Agg::Min, Some("test_positivity_rate")),
            ),
            (
                "average of every variable per LGA",
                g("LGA", Agg::Mean, None),
            ),
            (
                "mean of all variables by vulnerability category",
                g("vulnerability_category", Agg::Mean, None),
            ),
            (
                "average rainfall by risk category",
                g("vulnerability_category", Agg::Mean, Some("rainfall")),
            ),
            (
                "sum of dumpsites across LGAs",
                g("LGA", Agg::Sum, Some("dumpsites")),
            ),
        ],
    );
}

#[test]
fn top_n_phrasings() {
    let ctx = kano_lgas(true);
    let tn = |c: &str, n: u32, lowest: bool, lga: Option<&str>| ToolCall::TopN {
        column: s(c),
        n,
        lowest,
        lga: lga.map(s),
    };
    check_table(
        &ctx,
        &[
            ("top 5 wards by rainfall", tn("rainfall", 5, false, None)),
            (
                "which ward has the highest rainfall?",
                tn("rainfall", 1, false, None),
            ),
            (
                "10 wards with the highest tpr",
                tn("test_positivity_rate", 10, false, None),
            ),
            (
                "bottom 3 wards by housing quality",
                tn("housing_quality", 3, true, None),
            ),
            (
                "wards with the lowest nets per capita",
                tn("nets_per_capita", 10, true, None),
            ),
            (
                "top 5 wards by tpr in Fagge",
                tn("test_positivity_rate", 5, false, Some("Fagge")),
            ),
            (
                "highest rainfall wards in Dala LGA",
                tn("rainfall", 10, false, Some("Dala")),
            ),
            (
                "the 3 wards with most dumpsites",
                tn("dumpsites", 3, false, None),
            ),
            (
                "largest distance to water bodies",
                tn("distance_to_water_bodies", 10, false, None),
            ),
            ("sort wards by rainfall", tn("rainfall", 10, false, None)),
        ],
    );
}

#[test]
fn correlate_phrasings() {
    let ctx = kano_lgas(true);
    use mrpt_table::explore::CorrelationMethod::{Pearson, Spearman};
    let c = |a: &str, b: &str, m| ToolCall::Correlate {
        a: s(a),
        b: s(b),
        method: m,
    };
    check_table(
        &ctx,
        &[
            (
                "correlate rainfall and tpr",
                c("rainfall", "test_positivity_rate", Pearson),
            ),
            (
                "what is the correlation between rainfall and tpr?",
                c("rainfall", "test_positivity_rate", Pearson),
            ),
            (
                "is tpr related to housing quality?",
                c("test_positivity_rate", "housing_quality", Pearson),
            ),
            (
                "scatter plot of rainfall vs tpr",
                c("rainfall", "test_positivity_rate", Pearson),
            ),
            (
                "plot tpr against rainfall",
                c("test_positivity_rate", "rainfall", Pearson),
            ),
            (
                "relationship between dumpsites and tpr",
                c("dumpsites", "test_positivity_rate", Pearson),
            ),
            (
                "spearman correlation of rainfall and housing quality",
                c("rainfall", "housing_quality", Spearman),
            ),
            (
                "rank correlation between tpr and dumpsites",
                c("test_positivity_rate", "dumpsites", Spearman),
            ),
            (
                "how is rainfall associated with tpr",
                c("rainfall", "test_positivity_rate", Pearson),
            ),
            (
                "correlation of nets per capita with tpr",
                c("nets_per_capita", "test_positivity_rate", Pearson),
            ),
        ],
    );
}

#[test]
fn correlation_matrix_missingness_and_chart_phrasings() {
    let ctx = kano_lgas(true);
    use mrpt_table::explore::CorrelationMethod::{Pearson, Spearman};
    use mrpt_table::explore::MissingBy;
    let m = |me| ToolCall::CorrelationMatrix { method: me };
    let miss = |by| ToolCall::Missingness { by };
    let maps = |page| ToolCall::CompositeMaps { page };
    let chart = |method| ToolCall::RankingChart { method };
    check_table(
        &ctx,
        &[
            ("correlation matrix", m(Pearson)),
            ("show the correlation heatmap", m(Pearson)),
            ("how are the variables correlated?", m(Pearson)),
            ("correlate everything", m(Pearson)),
            ("spearman correlation matrix", m(Spearman)),
            ("pairwise correlations of all variables", m(Pearson)),
            ("heatmap of correlations", m(Pearson)),
            ("give me a correlation table", m(Pearson)),
            ("all correlations please", m(Pearson)),
            ("correlation heat map of the data", m(Pearson)),
            ("missing values by LGA", miss(MissingBy::Lga)),
            (
                "which columns have missing values?",
                miss(MissingBy::Column),
            ),
            ("missingness", miss(MissingBy::Column)),
            ("show me the missing data pattern", miss(MissingBy::Column)),
            (
                "how many missing values per column",
                miss(MissingBy::Column),
            ),
            ("map of missing data", miss(MissingBy::Column)),
            ("missing values by year", miss(MissingBy::Year)),
            (
                "which LGAs have the most missing data",
                miss(MissingBy::Lga),
            ),
            ("count the gaps in each column", miss(MissingBy::Column)),
            ("missing data report", miss(MissingBy::Column)),
            ("show the composite score maps", maps(1)),
            ("composite maps page 2", maps(2)),
            ("maps of each model", maps(1)),
            ("individual model maps", maps(1)),
            ("map every model", maps(1)),
            ("model score maps page 3", maps(3)),
            ("per model maps", maps(1)),
            ("maps of all models", maps(1)),
            ("composite score map for each model", maps(1)),
            ("maps of the model scores", maps(1)),
            ("show the ranking chart", chart(RankingMethod::Composite)),
            ("bar chart of the ranking", chart(RankingMethod::Composite)),
            ("pca ranking chart", chart(RankingMethod::Pca)),
            ("plot the ranking", chart(RankingMethod::Composite)),
            ("ranking bar chart", chart(RankingMethod::Composite)),
            ("chart of the rankings", chart(RankingMethod::Composite)),
            ("ranking as a bar chart", chart(RankingMethod::Composite)),
            ("bar chart of ward ranks", chart(RankingMethod::Composite)),
            ("ranking graph", chart(RankingMethod::Composite)),
            ("plot the rankings for pca", chart(RankingMethod::Pca)),
        ],
    );
}

#[test]
fn exploration_bad_inputs_list_what_exists() {
    let ctx = kano_lgas(true);
    // A text column to correlate.
    let p = plan("correlate vulnerability category and rainfall", &ctx);
    assert!(p.calls.is_empty(), "{p:#?}");
    let r = p.reply_without_tools.unwrap();
    assert!(r.contains("text column") && r.contains("rainfall, "), "{r}");
    // An LGA that does not exist (model path).
    let refused =
        crate::tools::parse_tool_call("wards_in_lga", r#"{"lga": "Atlantis"}"#, &ctx).unwrap_err();
    assert!(
        refused.reason.contains("Fagge") && refused.reason.contains("Atlantis"),
        "{}",
        refused.reason
    );
    // A column that does not exist (model path) lists the columns.
    let refused =
        crate::tools::parse_tool_call("describe", r#"{"column": "elevation"}"#, &ctx).unwrap_err();
    assert!(
        refused.reason.contains("elevation") && refused.reason.contains("rainfall"),
        "{}",
        refused.reason
    );
    // A correlation with one known column says what it needs.
    let p = plan("correlate elevation and rainfall", &ctx);
    assert!(p.calls.is_empty());
    assert!(
        p.reply_without_tools
            .unwrap()
            .contains("numeric columns are")
    );
    // A question about the method is not a statistic of the column it names.
    assert_eq!(
        only_call("how is the composite score calculated?", &ctx),
        ToolCall::ExplainMethod {
            topic: ExplainTopic::Composite
        }
    );
    // Rules path: an LGA and a column that do not exist.
    let p = plan("wards in Atlantis LGA", &ctx);
    assert!(p.calls.is_empty());
    let r = p.reply_without_tools.unwrap();
    assert!(
        r.contains("atlantis") && r.contains("Kano Municipal"),
        "{r}"
    );
    let p = plan("describe elevation", &ctx);
    assert!(p.calls.is_empty());
    assert!(p.reply_without_tools.unwrap().contains("rainfall"));
    // No LGAs at all.
    let refused = crate::tools::parse_tool_call("lga_ranking", "{}", &post()).unwrap_err();
    assert!(refused.reason.contains("LGA lookup"), "{}", refused.reason);
}
