#![no_main]

use service_auth_fuzz::structured::{FlowInput, flow_responses};

libfuzzer_sys::fuzz_target!(|input: FlowInput| flow_responses(input));
