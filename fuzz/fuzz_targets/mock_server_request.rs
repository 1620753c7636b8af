#![no_main]

use service_auth_fuzz::structured::{MockInput, mock_server_request};

libfuzzer_sys::fuzz_target!(|input: MockInput| mock_server_request(input));
