// SPDX-License-Identifier: MIT OR GPL-2.0-only (the kernel reads "Dual MIT/GPL" below)
//
// x0tta6bl4's XDP program: runs on every interface x0-node drives, before the kernel's
// network stack. For the protocol's UDP port only (everything else passes untouched) it
//   - counts packets and bytes per peer (source IPv6 address), and how many it passed,
//     which feeds link monitoring (x0-node hands the core these counts with its own);
//   - drops packets from quarantined peers (the blocklist);
//   - drops packets at random with a configured probability, globally or per peer, which
//     is how the lab injects loss and partitions on a kernel without netem;
//   - counts what it did in `stats`.
// Maps are the interface to user space; x0-node (live/src/xdp.rs) loads the program and
// owns them. Built by live/build.rs with clang -target bpf.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Peers tracked per interface. More than a node's neighbours ever are; an LRU evicts the
// quietest if a flood of forged sources arrives.
#define PEERS_MAX 1024
// Counters in `stats`.
enum {
    STAT_PASSED = 0,     // ours, handed to the stack
    STAT_BLOCKED = 1,    // ours, from a quarantined peer
    STAT_LOST = 2,       // ours, dropped by injected loss
    STAT_OTHER = 3,      // not ours (other protocol or port): passed untouched
    STAT_MALFORMED = 4,  // claimed IPv6/UDP but too short: passed to the stack to judge
    STATS_MAX = 5,
};

struct peer_key {
    __u8 addr[16];
};

// Every packet of ours from the peer, and those of them handed to the stack.
struct peer_counters {
    __u64 packets;
    __u64 bytes;
    __u64 passed;
};

// Configuration, index 0: the UDP port the protocol listens on (host order).
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, PEERS_MAX);
    __type(key, struct peer_key);
    __type(value, struct peer_counters);
} peer_counters SEC(".maps");

// Present: every packet from this peer is dropped. The value is unused (1).
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, PEERS_MAX);
    __type(key, struct peer_key);
    __type(value, __u8);
} blocklist SEC(".maps");

// Drop probability in parts of 2^32: index 0 of `drop_all` for every peer, `drop_peer`
// overrides it per peer (2^32 - 1 drops everything: a partition).
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} drop_all SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, PEERS_MAX);
    __type(key, struct peer_key);
    __type(value, __u32);
} drop_peer SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, STATS_MAX);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which) {
    __u64 *v = bpf_map_lookup_elem(&stats, &which);
    if (v)
        *v += 1;
}

SEC("xdp")
int x0_xdp(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end) {
        count(STAT_MALFORMED);
        return XDP_PASS;
    }
    if (eth->h_proto != bpf_htons(ETH_P_IPV6)) {
        count(STAT_OTHER);
        return XDP_PASS;
    }
    struct ipv6hdr *ip = (void *)(eth + 1);
    struct udphdr *udp = (void *)(ip + 1);
    if ((void *)(udp + 1) > end) {
        count(STAT_MALFORMED);
        return XDP_PASS;
    }
    // Frames carry no IPv6 extension headers: UDP follows the fixed header or it is not ours.
    __u32 zero = 0;
    __u32 *port = bpf_map_lookup_elem(&config, &zero);
    if (ip->nexthdr != IPPROTO_UDP || !port || udp->dest != bpf_htons((__u16)*port)) {
        count(STAT_OTHER);
        return XDP_PASS;
    }

    struct peer_key key = {};
    __builtin_memcpy(key.addr, ip->saddr.in6_u.u6_addr8, 16);
    int verdict = XDP_PASS;
    if (bpf_map_lookup_elem(&blocklist, &key)) {
        count(STAT_BLOCKED);
        verdict = XDP_DROP;
    } else {
        __u32 *p = bpf_map_lookup_elem(&drop_peer, &key);
        if (!p)
            p = bpf_map_lookup_elem(&drop_all, &zero);
        if (p && *p && bpf_get_prandom_u32() <= *p) {
            count(STAT_LOST);
            verdict = XDP_DROP;
        } else {
            count(STAT_PASSED);
        }
    }

    // Counted after the verdict, so that `passed` is what the stack (and the node's
    // socket) was offered: x0-node compares it with what the node received.
    __u64 bytes = (__u64)(end - data);
    __u64 passed = verdict == XDP_PASS;
    struct peer_counters *c = bpf_map_lookup_elem(&peer_counters, &key);
    if (c) {
        __sync_fetch_and_add(&c->packets, 1);
        __sync_fetch_and_add(&c->bytes, bytes);
        __sync_fetch_and_add(&c->passed, passed);
    } else {
        struct peer_counters fresh = {.packets = 1, .bytes = bytes, .passed = passed};
        bpf_map_update_elem(&peer_counters, &key, &fresh, BPF_NOEXIST);
    }
    return verdict;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
