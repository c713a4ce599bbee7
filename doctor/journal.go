package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/braid-cni/braid/attacher"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

const nameJournal = "journal"

// CheckJournal looks for journal entries whose network namespace is gone:
// the runtime never sent their DEL (or it failed), so their IPs and host
// interfaces are still held. With o.Fix it releases each through braid's
// own DEL, as the runtime would have. An entry whose namespace it cannot
// see as the runtime does (judgeNetNS) is named and never released. It
// also counts completed records without an entry (harmless: nothing reads
// them), and deletes them with o.Fix, for runtimes that never send GC.
func CheckJournal(ctx context.Context, conf *netconf.NetConf, o Options) Result {
	return withOrphans(checkEntries(ctx, conf, o), journal.New(conf.CNIDir), o.Fix)
}

// withOrphans adds the completed records without an entry to r's detail,
// deleting them first when fix.
func withOrphans(r Result, store *journal.Store, fix bool) Result {
	list := store.Orphans
	if fix {
		list = store.Prune
	}
	ids, err := list()
	switch {
	case err != nil:
		r.Detail += "; " + err.Error()
	case len(ids) > 0 && fix:
		r.Detail += fmt.Sprintf("; deleted %d completed records without an entry (%s)", len(ids), strings.Join(ids, ", "))
	case len(ids) > 0:
		r.Detail += fmt.Sprintf("; %d completed records without an entry, left by a crash during DEL and never read (--fix deletes them): %s", len(ids), strings.Join(ids, ", "))
	}
	return r
}

// checkEntries is CheckJournal's look at the entries.
func checkEntries(ctx context.Context, conf *netconf.NetConf, o Options) Result {
	store := journal.New(conf.CNIDir)
	ids, err := store.List()
	if err != nil {
		return fail(nameJournal, err.Error(), "check cniDir in braid's config")
	}
	view := o.hostView()
	var stale []*plan.Plan
	var unreadable, unjudged []string
	for _, id := range ids {
		p, err := store.Load(id)
		if err != nil {
			unreadable = append(unreadable, id)
			continue
		}
		switch v, why := judgeNetNS(p.NetNS, view); v {
		case gone:
			stale = append(stale, p)
		case unseen:
			unjudged = append(unjudged, describe([]*plan.Plan{p})+": "+why.Error())
		}
	}
	var problems, fixes []string
	if len(unjudged) > 0 {
		problems = append(problems, fmt.Sprintf("%d not judged (%s)", len(unjudged), strings.Join(unjudged, "; ")))
		fixes = append(fixes, "run braidctl doctor on the host, in the runtime's mount and PID namespaces, to judge the entries it cannot see from here")
	}
	if len(stale) > 0 && o.Fix {
		return withUnjudged(release(ctx, conf, store, stale, o), problems, fixes)
	}
	if len(stale) > 0 {
		problems = append(problems, fmt.Sprintf("%d stale (network namespace gone): %s", len(stale), describe(stale)))
		fixes = append(fixes, "run braidctl doctor --fix to release stale entries through braid's DEL")
	}
	if len(unreadable) > 0 {
		problems = append(problems, fmt.Sprintf("%d unreadable: %s", len(unreadable), strings.Join(unreadable, ", ")))
		fixes = append(fixes, "look at the unreadable entries in "+conf.CNIDir+" by hand: braid cannot release what it cannot read")
	}
	if len(problems) > 0 {
		return warn(nameJournal, fmt.Sprintf("%d entries in %s; %s", len(ids), conf.CNIDir, strings.Join(problems, "; ")), strings.Join(fixes, "; "))
	}
	return ok(nameJournal, fmt.Sprintf("%d entries in %s, none stale", len(ids), conf.CNIDir))
}

// withUnjudged adds the entries --fix left alone, because it could not
// judge them, to release's result: an ok becomes a warning.
func withUnjudged(r Result, problems, fixes []string) Result {
	if len(problems) == 0 {
		return r
	}
	r.Detail += "; " + strings.Join(problems, "; ")
	if r.Status == OK {
		r.Status = Warn
	}
	if r.Fix != "" {
		fixes = append(fixes, r.Fix)
	}
	r.Fix = strings.Join(fixes, "; ")
	return r
}

func describe(plans []*plan.Plan) string {
	out := make([]string, 0, len(plans))
	for _, p := range plans {
		s := p.ContainerID
		if p.Pod.Name != "" {
			s += " (pod " + p.Pod.Namespace + "/" + p.Pod.Name + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// release runs braid's DEL for each stale plan, as the runtime would have
// (its container, netns, interface and pod as recorded at ADD), and
// confirms its entry is gone.
func release(ctx context.Context, conf *netconf.NetConf, store *journal.Store, stale []*plan.Plan, o Options) Result {
	if o.Del == nil {
		return fail(nameJournal, "cannot release: no DEL configured", "run braidctl doctor as root on the node")
	}
	var released, failed []string
	for _, p := range stale {
		err := o.Del(ctx, conf, delRequest(p))
		if err == nil {
			if _, rerr := store.Read(p.ContainerID); !errors.Is(rerr, fs.ErrNotExist) {
				err = fmt.Errorf("entry still there after DEL")
			}
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", p.ContainerID, err))
			continue
		}
		released = append(released, describe([]*plan.Plan{p}))
	}
	detail := "released " + strings.Join(released, ", ")
	if len(released) == 0 {
		detail = "released none"
	}
	if len(failed) > 0 {
		return fail(nameJournal, detail+"; DEL failed for "+strings.Join(failed, "; "),
			"read braid's log (logFile in its config) for the failing delegate, then run doctor --fix again")
	}
	return ok(nameJournal, detail)
}

// delRequest is the runtime's DEL for p, as recorded at ADD.
func delRequest(p *plan.Plan) attacher.Request {
	return attacher.Request{Request: plan.Request{
		ContainerID: p.ContainerID,
		NetNS:       p.NetNS,
		IfName:      p.IfName,
		Args:        p.Args,
		Pod:         p.Pod,
	}}
}
