fn main() { println!("snap2p CLI: under construction"); }
