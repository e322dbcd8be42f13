"""Developer tooling: the local runner, embedded servers, benchmark, demo feed, AsyncAPI writer
and the ``jiandu`` command line. Installed with the ``dev`` extra; no service imports it."""
