//! A loopback DNS server for the tests of outgoing mail: Python's dnslib (Debian python3-dnslib)
//! serving one zone in master-file syntax on 127.0.0.1, so MX lookups never leave the machine.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use crate::peer::PYTHON;

/// A running dnslib server; killed on drop.
pub struct DnsServer {
    child: Child,
    pub port: u16,
}

impl DnsServer {
    /// Serves `zone` (e.g. `"a.example. 60 IN MX 10 mx.a.example.\n"`) on a free port.
    pub fn start(zone: &str) -> DnsServer {
        let [port] = crate::free_ports::<1>();
        let mut child = Command::new(PYTHON)
            .arg("-c")
            .arg(format!(
                "import time\n\
                 from dnslib.server import DNSServer, DNSLogger\n\
                 from dnslib.zoneresolver import ZoneResolver\n\
                 s = DNSServer(ZoneResolver({zone:?}), port={port}, address='127.0.0.1', \
                 logger=DNSLogger('-request,-reply,-truncated,-error,-recv,-send,-data'))\n\
                 s.start_thread()\nprint('ready', flush=True)\n\
                 import os, sys\nsys.stdout = open(os.devnull, 'w')\ntime.sleep(3600)\n"
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnslib (apt-get install python3-dnslib)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("dns output");
        assert_eq!(line.trim(), "ready", "dnslib did not start");
        DnsServer { child, port }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
