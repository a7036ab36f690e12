// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * EdgeCUPS software dataplane: the eBPF (tc cls_bpf, direct-action) fast path.
 *
 * One program, upf_ingress, hangs on the clsact ingress of every Ethernet device of
 * the UPF's namespace. Per packet:
 *
 *   - IPv4/UDP to port 2152 of an N3 address (n3_addrs): a GTP-U G-PDU (TS 29.281).
 *     Its TEID is looked up in teid_map; a hit is decapsulated (Outer Header Removal)
 *     and redirected to the device bpf_fib_lookup gives for the inner destination.
 *   - Any other IPv4 packet whose destination is in ue_map: encapsulated in
 *     GTP-U/UDP/IPv4 (Outer Header Creation, with a PDU Session Container carrying
 *     the QFI when the session has one) and redirected towards the gNB.
 *
 * Everything the program does not handle exactly like the Python forwarder would
 * returns TC_ACT_OK *untouched*: the kernel delivers it to the N3 UDP socket or
 * routes it into the Network Instance's TUN, and user_plane.forward decides. That
 * covers signalling (Echo, Error Indication, End Marker), unknown TEIDs and UEs,
 * extension headers other than one PDU Session Container, a QFI or source address
 * the PDR does not match, IPv6, fragments of G-PDUs, TTL <= 1, GSO packets, routes
 * not leaving by an attached Ethernet device or without a resolved neighbour, and a
 * packet that would use up the byte budget user space gave the session (volume
 * thresholds and quotas fire in Python, on the packet that reaches them).
 *
 * Per session (an index into usage/limits, chosen by user space): cumulative
 * packets and octets per direction with the time of the first and last packet
 * since user space's last read (limits.epoch_ns), packets its QER dropped (gate,
 * MBR) per direction, and one token bucket per direction for the QER's MBR, all
 * under a bpf_spin_lock. user space only reads
 * usage (BPF_F_LOCK) and only writes limits, so no counter is ever overwritten.
 *
 * Build: clang -O2 -g -target bpf -I/usr/include/$(gcc -print-multiarch) -c upf.bpf.c -o upf.bpf.o
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define GTPU_PORT 2152
#define GTP_G_PDU 0xff
#define GTP_FLAGS_PLAIN 0x30 /* version 1, PT 1, no optional fields */
#define GTP_FLAGS_EXT 0x34   /* ... and E: one extension header chain */
#define GTP_EXT_PSC 0x85     /* PDU Session Container, TS 29.281 §5.2.2.7 */
#define AF_INET 2

/* ul_rule.flags / dl_rule.flags */
#define F_QFI 0x01   /* UL: the PDR matches this QFI only (PDI QFI) */
#define F_SPOOF 0x02 /* UL: the inner source must be the UE address (PDI UE IP Address) */
#define F_GATE 0x04  /* the QER gate of this direction is closed */
#define F_MBR 0x08   /* police with this direction's token bucket */
#define F_PSC 0x10   /* DL: write a PDU Session Container with qfi */
#define F_RQI 0x20   /* DL: ... and the RQI bit */

enum stat {
	ST_UL_FWD,
	ST_DL_FWD,
	ST_PUNT_BUDGET,
	ST_PUNT_HEADER,  /* GTP-U flags/extensions/lengths the fast path does not parse */
	ST_PUNT_MATCH,   /* QFI or anti-spoofing: Python drops and counts it */
	ST_PUNT_ROUTE,   /* no route via an attached device, no neighbour, MTU */
	ST_PUNT_TTL,
	ST_PUNT_GSO,
	/* Drops by direction (uplink, then downlink), reason by reason: drop() relies on
	 * this order. user space sums the two of a reason into its total. */
	ST_UL_DROP_GATE,
	ST_DL_DROP_GATE,
	ST_UL_DROP_MBR,
	ST_DL_DROP_MBR,
	ST_UL_DROP_ADJUST, /* bpf_skb_adjust_room failed after the packet was counted */
	ST_DL_DROP_ADJUST,
	ST_PUNT_OTHER,     /* IPv6 inner packet, missing slot */
	ST_MAX,
};

struct ul_rule {
	__u32 slot;
	__be32 ue_ip;
	__u8 qfi;
	__u8 flags;
	__u16 pad;
};

struct dl_rule {
	__u32 slot;
	__u32 teid;
	__be32 gnb_ip;
	__be32 n3_ip;
	__u8 qfi;
	__u8 flags;
	__u16 pad;
};

struct usage {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 ul_packets, ul_bytes, dl_packets, dl_bytes;
	__u64 ul_first_ns, ul_last_ns, dl_first_ns, dl_last_ns;
	__u64 ul_tokens, ul_stamp_ns, dl_tokens, dl_stamp_ns; /* tokens in bit-nanoseconds */
	__u64 ul_drops, dl_drops; /* packets of the slot's rules dropped (gate, MBR) */
};

struct limits {
	__u64 ul_limit, dl_limit, tot_limit; /* cumulative octets the fast path may reach */
	__u64 epoch_ns;                      /* user space's last read (CLOCK_MONOTONIC) */
	__u64 ul_rate, dl_rate;              /* MBR in bit/s */
	__u64 ul_depth, dl_depth;            /* bucket depth in bit-nanoseconds */
	__u64 ul_fill_ns, dl_fill_ns;        /* time an empty bucket takes to fill */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* TEID, host order */
	__type(value, struct ul_rule);
} teid_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __be32); /* UE IPv4 address */
	__type(value, struct dl_rule);
} ue_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct usage);
} usage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct limits);
} limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __be32); /* local N3 IPv4 address */
	__type(value, __u32);
} n3_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32); /* ifindex the fast path may redirect to */
	__type(value, __u32);
} devices SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline int stat(__u32 reason, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &reason);
	if (v)
		*v += 1;
	return verdict;
}

/* Count a drop of reason ST_UL_DROP_<reason> in direction dl: TC_ACT_SHOT. */
static __always_inline int drop(__u32 reason, int dl)
{
	return stat(reason + (dl ? 1 : 0), TC_ACT_SHOT);
}

/* QER gate, byte budget, MBR bucket, counters: 0 forward, else the stat to count:
 * ST_PUNT_BUDGET (TC_ACT_OK) or a drop as its uplink stat ST_UL_DROP_* (drop() counts it
 * in the packet's direction; the slot counts it in its drops). No helper calls: the
 * caller read the clock, and a spin lock forbids calls while held. */
static __always_inline int account(struct usage *u, struct limits *l, int dl, __u8 flags, __u64 n, __u64 now)
{
	__u64 *packets = dl ? &u->dl_packets : &u->ul_packets;
	__u64 *bytes = dl ? &u->dl_bytes : &u->ul_bytes;
	__u64 *first = dl ? &u->dl_first_ns : &u->ul_first_ns;
	__u64 *last = dl ? &u->dl_last_ns : &u->ul_last_ns;
	__u64 *tokens = dl ? &u->dl_tokens : &u->ul_tokens;
	__u64 *stamp = dl ? &u->dl_stamp_ns : &u->ul_stamp_ns;
	__u64 *drops = dl ? &u->dl_drops : &u->ul_drops;
	__u64 limit = dl ? l->dl_limit : l->ul_limit;
	__u64 rate = dl ? l->dl_rate : l->ul_rate;
	__u64 depth = dl ? l->dl_depth : l->ul_depth;
	__u64 fill = dl ? l->dl_fill_ns : l->ul_fill_ns;
	__u64 epoch = l->epoch_ns;
	__u64 tot_limit = l->tot_limit;
	int verdict = 0;

	bpf_spin_lock(&u->lock);
	if (flags & F_GATE) {
		verdict = ST_UL_DROP_GATE;
		*drops += 1;
		goto out;
	}
	if (*bytes + n > limit || u->ul_bytes + u->dl_bytes + n > tot_limit) {
		verdict = ST_PUNT_BUDGET;
		goto out;
	}
	if (flags & F_MBR) {
		/* TS 29.244 §8.2.8: the MBR limits the bits of whole inner packets. */
		__u64 elapsed = now - *stamp;
		__u64 t = *tokens;
		__u64 cost = n * 8 * 1000000000ULL;

		if (now < *stamp)
			elapsed = 0;
		if (elapsed >= fill)
			t = depth;
		else
			t += elapsed * rate;
		if (t > depth)
			t = depth;
		*stamp = now;
		if (t < cost) {
			*tokens = t;
			verdict = ST_UL_DROP_MBR;
			*drops += 1;
			goto out;
		}
		*tokens = t - cost;
	}
	if (*last < epoch) /* the first packet since user space's last read */
		*first = now;
	*last = now;
	*packets += 1;
	*bytes += n;
out:
	bpf_spin_unlock(&u->lock);
	return verdict;
}

/* Charge n bytes to the usage of a rule's slot within its limits (account()):
 * TC_ACT_UNSPEC to forward the packet, else its verdict, the stat counted. */
static __always_inline int charge(__u32 slot, int dl, __u8 flags, __u32 n)
{
	struct usage *u = bpf_map_lookup_elem(&usage, &slot);
	struct limits *l = bpf_map_lookup_elem(&limits, &slot);
	if (!u || !l)
		return stat(ST_PUNT_OTHER, TC_ACT_OK);
	__u64 now = bpf_ktime_get_ns();
	int why = account(u, l, dl, flags, n, now);
	if (why == ST_PUNT_BUDGET)
		return stat(why, TC_ACT_OK);
	if (why)
		return drop(why, dl);
	return TC_ACT_UNSPEC;
}

/* RFC 1624 incremental update, as the kernel's ip_decrease_ttl(). */
static __always_inline void decrease_ttl(struct iphdr *ip)
{
	__u32 check = (__u32)ip->check;

	check += (__u32)bpf_htons(0x0100);
	ip->check = (__sum16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

static __always_inline __u16 ipv4_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline int redirect(struct __sk_buff *skb, struct bpf_fib_lookup *fib)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return bpf_redirect(fib->ifindex, 0);
}

static __always_inline int routed(struct __sk_buff *skb, struct bpf_fib_lookup *fib)
{
	/* SUCCESS only (NO_NEIGH and the rest: the kernel routes it and resolves the
	 * neighbour), and only out of a device the fast path is attached to (not a TUN). */
	if (bpf_fib_lookup(skb, fib, sizeof(*fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	return bpf_map_lookup_elem(&devices, &fib->ifindex) != 0;
}

static __always_inline int uplink(struct __sk_buff *skb, void *data_end, struct iphdr *ip, struct udphdr *udp)
{
	__u8 *gtp = (void *)(udp + 1);
	__u32 hlen = 8, qfi = 0xff, teid;
	__u16 glen;
	struct ul_rule *rule;

	if ((void *)(gtp + 8) > data_end)
		return stat(ST_PUNT_HEADER, TC_ACT_OK);
	if (gtp[1] != GTP_G_PDU)
		return TC_ACT_OK; /* signalling: the N3 socket's */
	glen = ((__u16)gtp[2] << 8) | gtp[3];
	teid = ((__u32)gtp[4] << 24) | ((__u32)gtp[5] << 16) | ((__u32)gtp[6] << 8) | gtp[7];
	rule = bpf_map_lookup_elem(&teid_map, &teid);
	if (!rule)
		return TC_ACT_OK; /* Error Indication from Python (TS 29.281 §7.3.1) */
	if (gtp[0] == GTP_FLAGS_EXT) {
		/* The usual N3 uplink: one 4-octet PDU Session Container ending the chain,
		 * as gtpu.decode_gpdu's fast case (UL PDU SESSION INFORMATION, or DL without PPP). */
		if ((void *)(gtp + 16) > data_end)
			return stat(ST_PUNT_HEADER, TC_ACT_OK);
		__u8 o1 = gtp[13], o2 = gtp[14];
		if (gtp[11] != GTP_EXT_PSC || gtp[12] != 1 || gtp[15] != 0)
			return stat(ST_PUNT_HEADER, TC_ACT_OK);
		if (!((o1 < 0x10 && !(o2 & 0x80)) || (o1 >= 0x10 && o1 < 0x20)))
			return stat(ST_PUNT_HEADER, TC_ACT_OK);
		qfi = o2 & 0x3f;
		hlen = 16;
	} else if (gtp[0] != GTP_FLAGS_PLAIN) {
		return stat(ST_PUNT_HEADER, TC_ACT_OK);
	}
	/* Lengths must agree end to end (decode_gpdu and _ip_version check the same). */
	__u32 ip_len = bpf_ntohs(ip->tot_len);
	if (ip_len != skb->len - ETH_HLEN || bpf_ntohs(udp->len) != ip_len - 20 || (__u32)glen + 8 != ip_len - 28)
		return stat(ST_PUNT_HEADER, TC_ACT_OK);
	struct iphdr *inner = hlen == 16 ? (void *)(gtp + 16) : (void *)(gtp + 8);
	if ((void *)(inner + 1) > data_end)
		return stat(ST_PUNT_OTHER, TC_ACT_OK);
	__u32 n = glen + 8 - hlen;
	if (inner->version != 4 || inner->ihl < 5 || bpf_ntohs(inner->tot_len) != n)
		return stat(ST_PUNT_OTHER, TC_ACT_OK);
	if ((rule->flags & F_QFI) && qfi != rule->qfi)
		return stat(ST_PUNT_MATCH, TC_ACT_OK);
	if ((rule->flags & F_SPOOF) && inner->saddr != rule->ue_ip)
		return stat(ST_PUNT_MATCH, TC_ACT_OK);
	if (inner->ttl <= 1)
		return stat(ST_PUNT_TTL, TC_ACT_OK);

	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.tos = inner->tos;
	fib.l4_protocol = inner->protocol;
	fib.tot_len = n;
	fib.ipv4_src = inner->saddr;
	fib.ipv4_dst = inner->daddr;
	fib.ifindex = skb->ingress_ifindex;
	__u32 slot = rule->slot;
	__u8 flags = rule->flags;
	if (!routed(skb, &fib))
		return stat(ST_PUNT_ROUTE, TC_ACT_OK);

	int verdict = charge(slot, 0, flags, n);
	if (verdict != TC_ACT_UNSPEC)
		return verdict;

	/* Re-derive the inner header after the helper calls (the verifier forgets packet bounds). */
	void *data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	inner = data + ETH_HLEN + 28 + (hlen == 16 ? 16 : 8);
	if ((void *)(inner + 1) > data_end)
		return drop(ST_UL_DROP_ADJUST, 0);
	decrease_ttl(inner); /* forwarded, as the kernel would after the TUN write */
	if (bpf_skb_adjust_room(skb, -(__s32)(28 + hlen), BPF_ADJ_ROOM_MAC, 0))
		return drop(ST_UL_DROP_ADJUST, 0);
	stat(ST_UL_FWD, 0);
	return redirect(skb, &fib);
}

static __always_inline int downlink(struct __sk_buff *skb, void *data_end, struct iphdr *ip, struct dl_rule *rule)
{
	__u32 n = bpf_ntohs(ip->tot_len);
	__u32 hlen = (rule->flags & F_PSC) ? 16 : 8;

	if (n != skb->len - ETH_HLEN || ip->ihl < 5)
		return stat(ST_PUNT_HEADER, TC_ACT_OK);
	if (ip->ttl <= 1)
		return stat(ST_PUNT_TTL, TC_ACT_OK);
	if (skb->gso_segs > 1 || skb->gso_size)
		return stat(ST_PUNT_GSO, TC_ACT_OK); /* segmented by the kernel on the TUN path */

	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.sport = bpf_htons(GTPU_PORT);
	fib.dport = bpf_htons(GTPU_PORT);
	fib.tot_len = n + 28 + hlen;
	fib.ipv4_src = rule->n3_ip;
	fib.ipv4_dst = rule->gnb_ip;
	fib.ifindex = skb->ingress_ifindex;
	__u32 slot = rule->slot, teid = rule->teid;
	__be32 gnb = rule->gnb_ip, n3 = rule->n3_ip;
	__u8 flags = rule->flags, qfi = rule->qfi;
	if (!routed(skb, &fib))
		return stat(ST_PUNT_ROUTE, TC_ACT_OK);

	int verdict = charge(slot, 1, flags, n);
	if (verdict != TC_ACT_UNSPEC)
		return verdict;

	void *data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	struct iphdr *inner = data + ETH_HLEN;
	if ((void *)(inner + 1) > data_end)
		return drop(ST_UL_DROP_ADJUST, 1);
	decrease_ttl(inner); /* forwarded, as the kernel does on the way into the TUN */
	if (bpf_skb_adjust_room(skb, 28 + hlen, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP))
		return drop(ST_UL_DROP_ADJUST, 1);

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	struct iphdr *oip = data + ETH_HLEN;
	struct udphdr *oudp = (void *)(oip + 1);
	__u8 *gtp = (void *)(oudp + 1);
	if ((void *)(gtp + 16) > data_end)
		return drop(ST_UL_DROP_ADJUST, 1);
	/* What the N3 UDP socket would send: IPv4 with DF, TTL 64, from the N3 address. */
	oip->version = 4;
	oip->ihl = 5;
	oip->tos = 0;
	oip->tot_len = bpf_htons(n + 28 + hlen);
	oip->id = 0;
	oip->frag_off = bpf_htons(0x4000);
	oip->ttl = 64;
	oip->protocol = IPPROTO_UDP;
	oip->check = 0;
	oip->saddr = n3;
	oip->daddr = gnb;
	oip->check = ipv4_csum(oip);
	oudp->source = bpf_htons(GTPU_PORT);
	oudp->dest = bpf_htons(GTPU_PORT);
	oudp->len = bpf_htons(n + 8 + hlen);
	oudp->check = 0; /* optional over IPv4 (RFC 768) */
	/* gtpu.encode_gpdu_header(teid, n, qfi, pdu_type_dl=True, rqi) byte for byte. */
	__u16 glen = n + hlen - 8;
	gtp[0] = hlen == 16 ? GTP_FLAGS_EXT : GTP_FLAGS_PLAIN;
	gtp[1] = GTP_G_PDU;
	gtp[2] = glen >> 8;
	gtp[3] = glen & 0xff;
	gtp[4] = teid >> 24;
	gtp[5] = (teid >> 16) & 0xff;
	gtp[6] = (teid >> 8) & 0xff;
	gtp[7] = teid & 0xff;
	if (hlen == 16) {
		gtp[8] = 0;  /* Sequence Number (ignored, §5.1) */
		gtp[9] = 0;
		gtp[10] = 0; /* N-PDU Number */
		gtp[11] = GTP_EXT_PSC;
		gtp[12] = 1; /* length in 4-octet units */
		gtp[13] = 0; /* PDU type 0: DL PDU SESSION INFORMATION (TS 38.415 §5.5.2.1) */
		gtp[14] = (qfi & 0x3f) | ((flags & F_RQI) ? 0x40 : 0);
		gtp[15] = 0; /* no next extension header */
	}
	stat(ST_DL_FWD, 0);
	return redirect(skb, &fib);
}

SEC("tc")
int upf_ingress(struct __sk_buff *skb)
{
	void *data, *data_end;
	const __u32 need = ETH_HLEN + 20 + 8 + 16 + 20;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + need > data_end && skb->len > data_end - data) {
		/* Pitfall 2: direct access sees the linear part only. */
		bpf_skb_pull_data(skb, skb->len < need ? skb->len : need);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end || ip->version != 4)
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_UDP && ip->ihl == 5) {
		struct udphdr *udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > data_end)
			return TC_ACT_OK;
		if (udp->dest == bpf_htons(GTPU_PORT) && bpf_map_lookup_elem(&n3_addrs, &ip->daddr)) {
			if (ip->frag_off & bpf_htons(0x3fff))
				return stat(ST_PUNT_HEADER, TC_ACT_OK);
			return uplink(skb, data_end, ip, udp);
		}
	}
	struct dl_rule *rule = bpf_map_lookup_elem(&ue_map, &ip->daddr);
	if (!rule)
		return TC_ACT_OK;
	return downlink(skb, data_end, ip, rule);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
