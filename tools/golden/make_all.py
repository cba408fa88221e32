#!/usr/bin/env python3
"""make_all.py — regenerates every golden fixture under tests/fixtures/ (see README.md)."""
import make_draft
import make_metrics
import make_schedulers
import make_sla
import make_st_fixture
import make_tokenizer
import make_umt5
import make_wan_dit
import make_wan_keys
import make_wan_sampling
import make_wan_t2v
import make_wan_vae

if __name__ == "__main__":
    for mod in (make_wan_dit, make_wan_keys, make_wan_vae, make_wan_sampling, make_schedulers,
                make_st_fixture, make_umt5, make_tokenizer,
                make_wan_t2v, make_draft, make_sla, make_metrics):
        mod.main()
