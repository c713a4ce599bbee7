package devices

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestAllocationTake(t *testing.T) {
	devs := []Device{
		{Resource: "example.com/vf", ID: "vf3"},
		{Resource: "example.com/vf", ID: "vf1"},
		{Resource: "example.com/vf", ID: "vf1"}, // listed for two containers
		{Resource: "example.com/vf", ID: "vf2"},
		{Resource: "other.io/nic", ID: "0000:3b:02.1"},
	}
	type take struct{ resource, want, got, err string }
	for _, tc := range []struct {
		name  string
		takes []take
	}{
		{"several networks on one resource take sorted IDs in turn", []take{
			{resource: "example.com/vf", got: "vf1"},
			{resource: "example.com/vf", got: "vf2"},
			{resource: "example.com/vf", got: "vf3"},
		}},
		{"several resources are counted apart", []take{
			{resource: "other.io/nic", got: "0000:3b:02.1"},
			{resource: "example.com/vf", got: "vf1"},
			{resource: "other.io/nic", err: "every device of resource other.io/nic allocated to the pod is used"},
			{resource: "example.com/vf", got: "vf2"},
		}},
		{"none left names the resource and the allocation", []take{
			{resource: "example.com/vf", got: "vf1"},
			{resource: "example.com/vf", got: "vf2"},
			{resource: "example.com/vf", got: "vf3"},
			{resource: "example.com/vf", err: "every device of resource example.com/vf allocated to the pod is used by another of its networks: request one more example.com/vf (the pod's allocation: example.com/vf=[vf1 vf2 vf3], other.io/nic=[0000:3b:02.1])"},
		}},
		{"a resource the pod did not request", []take{
			{resource: "missing.io/x", err: "no device of resource missing.io/x is allocated to the pod: does it request missing.io/x in resources.limits? (the pod's allocation: example.com/vf=[vf1 vf2 vf3], other.io/nic=[0000:3b:02.1])"},
		}},
		{"a named device is taken out of turn, the rest keep their order", []take{
			{resource: "example.com/vf", want: "vf2", got: "vf2"},
			{resource: "example.com/vf", got: "vf1"},
			{resource: "example.com/vf", got: "vf3"},
		}},
		{"a named device that is not allocated or already used", []take{
			{resource: "example.com/vf", want: "vf9", err: "device vf9 of resource example.com/vf is not allocated to the pod or already used"},
			{resource: "example.com/vf", got: "vf1"},
			{resource: "example.com/vf", want: "vf1", err: "device vf1 of resource example.com/vf is not allocated"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAllocation(devs)
			for i, tk := range tc.takes {
				d, err := a.Take(tk.resource, tk.want)
				switch {
				case tk.err != "" && (err == nil || !strings.Contains(err.Error(), tk.err)):
					t.Errorf("take %d (%s): error %v, want one containing %q", i, tk.resource, err, tk.err)
				case tk.err == "" && err != nil:
					t.Errorf("take %d (%s): %v", i, tk.resource, err)
				case tk.err == "" && (d.ID != tk.got || d.Resource != tk.resource):
					t.Errorf("take %d (%s): got %s=%s, want %s", i, tk.resource, d.Resource, d.ID, tk.got)
				}
			}
		})
	}
}

func TestAllocationStringEmpty(t *testing.T) {
	_, err := NewAllocation(nil).Take("example.com/vf", "")
	if err == nil || !strings.Contains(err.Error(), "allocation: none") {
		t.Errorf("error %v does not say the pod has no devices at all", err)
	}
}

type listerFunc func(ctx context.Context, pod *corev1.Pod) ([]Device, error)

func (f listerFunc) Devices(ctx context.Context, pod *corev1.Pod) ([]Device, error) {
	return f(ctx, pod)
}

func TestSources(t *testing.T) {
	a := listerFunc(func(context.Context, *corev1.Pod) ([]Device, error) { return []Device{{Resource: "r", ID: "1"}}, nil })
	b := listerFunc(func(context.Context, *corev1.Pod) ([]Device, error) {
		return []Device{{Resource: "d", ID: "2", Claim: &ClaimDevice{Name: "c"}}}, nil
	})
	got, err := Sources{a, b}.Devices(t.Context(), pod("ns", "p", "u"))
	if err != nil || len(got) != 2 || got[0].ID != "1" || got[1].Claim == nil {
		t.Errorf("Sources = %+v, %v; want both listers' devices in order", got, err)
	}
	boom := errors.New("boom")
	failing := listerFunc(func(context.Context, *corev1.Pod) ([]Device, error) { return nil, boom })
	got, err = (Sources{failing, a}).Devices(t.Context(), pod("ns", "p", "u"))
	if !errors.Is(err, boom) || len(got) != 1 || got[0].ID != "1" {
		t.Errorf("Sources with a failing lister = %+v, %v; want the other's devices and the failing one's error", got, err)
	}
}
