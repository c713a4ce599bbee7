package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// Where the kubelet keeps its pod-resources socket and its device manager's
// checkpoint, with the default --root-dir.
const (
	DefaultPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"
	DefaultCheckpointFile     = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"
)

// maxListSize bounds the pod-resources answer: the kubelet's own limit.
const maxListSize = 16 << 20

// Kubelet lists the device-plugin devices the kubelet allocated to a pod:
// from its pod-resources API, else from the device manager's checkpoint.
type Kubelet struct {
	Socket     string // pod-resources socket; default DefaultPodResourcesSocket
	Checkpoint string // default DefaultCheckpointFile
	// Timeout bounds the API call; default 5 s.
	Timeout time.Duration
}

// Devices implements Lister. The checkpoint is read when the API does not
// answer, or does not know the pod yet.
func (k *Kubelet) Devices(ctx context.Context, pod *corev1.Pod) ([]Device, error) {
	devs, found, apiErr := k.fromAPI(ctx, pod)
	if apiErr == nil && found {
		return devs, nil
	}
	fromFile, fileErr := ReadCheckpoint(k.checkpoint(), string(pod.UID))
	switch {
	case fileErr == nil:
		return fromFile, nil
	case apiErr == nil:
		// The API answered and does not list the pod: it has no devices.
		return nil, nil
	default:
		return nil, fmt.Errorf("devices of pod %s/%s: kubelet pod-resources API: %w; device manager checkpoint: %w", pod.Namespace, pod.Name, apiErr, fileErr)
	}
}

// fromAPI asks the pod-resources API. found reports whether the API listed
// the pod at all.
func (k *Kubelet) fromAPI(ctx context.Context, pod *corev1.Pod) (devs []Device, found bool, err error) {
	resp, err := k.list(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, p := range resp.GetPodResources() {
		if p.GetNamespace() != pod.Namespace || p.GetName() != pod.Name {
			continue
		}
		found = true
		for _, c := range p.GetContainers() {
			for _, d := range c.GetDevices() {
				for _, id := range d.GetDeviceIds() {
					devs = append(devs, Device{Resource: d.GetResourceName(), ID: id})
				}
			}
		}
	}
	return devs, found, nil
}

// PodCount asks the pod-resources API how many pods the kubelet lists:
// whether braid can ask it at all (braidctl doctor).
func (k *Kubelet) PodCount(ctx context.Context) (int, error) {
	resp, err := k.list(ctx)
	if err != nil {
		return 0, err
	}
	return len(resp.GetPodResources()), nil
}

// SocketPath is the pod-resources socket asked.
func (k *Kubelet) SocketPath() string {
	if k.Socket == "" {
		return DefaultPodResourcesSocket
	}
	return k.Socket
}

// CheckpointPath is the checkpoint read when the socket does not answer.
func (k *Kubelet) CheckpointPath() string { return k.checkpoint() }

func (k *Kubelet) list(ctx context.Context) (*podresourcesv1.ListPodResourcesResponse, error) {
	socket := k.SocketPath()
	if _, err := os.Stat(socket); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxListSize)))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	defer conn.Close()
	timeout := k.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := podresourcesv1.NewPodResourcesListerClient(conn).List(ctx, &podresourcesv1.ListPodResourcesRequest{})
	if err != nil {
		return nil, fmt.Errorf("list pod resources at %s: %w", socket, err)
	}
	return resp, nil
}

func (k *Kubelet) checkpoint() string {
	if k.Checkpoint == "" {
		return DefaultCheckpointFile
	}
	return k.Checkpoint
}

// checkpointFile is the part of the device manager's checkpoint braid
// reads. DeviceIDs is a map from NUMA node to IDs since Kubernetes 1.20, a
// plain list before.
type checkpointFile struct {
	Data struct {
		PodDeviceEntries []struct {
			PodUID       string
			ResourceName string
			DeviceIDs    json.RawMessage
		}
	}
}

// ReadCheckpoint lists the devices the checkpoint at path holds for the pod
// with uid.
func ReadCheckpoint(path, uid string) ([]Device, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cp checkpointFile
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	var out []Device
	for _, e := range cp.Data.PodDeviceEntries {
		if e.PodUID != uid {
			continue
		}
		ids, err := checkpointIDs(e.DeviceIDs)
		if err != nil {
			return nil, fmt.Errorf("decode %s: pod %s resource %s: %w", path, uid, e.ResourceName, err)
		}
		for _, id := range ids {
			out = append(out, Device{Resource: e.ResourceName, ID: id})
		}
	}
	return out, nil
}

func checkpointIDs(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var perNUMA map[string][]string
	if err := json.Unmarshal(raw, &perNUMA); err == nil {
		var ids []string
		for _, list := range perNUMA {
			ids = append(ids, list...)
		}
		return ids, nil
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, errors.New("DeviceIDs is neither a map of NUMA node to IDs nor a list of IDs")
	}
	return ids, nil
}
