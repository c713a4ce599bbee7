package annotations

import (
	"reflect"
	"testing"
)

func TestRuntimeRequests(t *testing.T) {
	sels, err := ParseNetworks(`[{"name": "a", "ips": ["10.1.1.5/24"], "mac": "02:00:00:00:00:01", "infiniband-guid": "c2:11:22:33:44:55:66:77",
		"portMappings": [{"hostPort": 80, "containerPort": 8080}], "bandwidth": {"ingressRate": 1}, "deviceID": "0000:3b:02.1"}, {"name": "b"}]`, "ns")
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	for _, r := range sels[0].RuntimeRequests() {
		got = append(got, [2]string{r.Key, r.Capability})
	}
	want := [][2]string{{"ips", "ips"}, {"mac", "mac"}, {"infiniband-guid", "infinibandGUID"}, {"portMappings", "portMappings"}, {"bandwidth", "bandwidth"}, {"deviceID", "deviceID"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if r := sels[0].RuntimeRequests(); r[5].Value != "0000:3b:02.1" || r[1].Value != "02:00:00:00:00:01" {
		t.Errorf("values %+v", r)
	}
	if r := sels[1].RuntimeRequests(); len(r) != 0 {
		t.Errorf("a selection without requests: %+v", r)
	}
}
