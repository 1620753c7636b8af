#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| service_auth_fuzz::bytes::error_response(data));
