package netconf

import (
	"github.com/containernetworking/cni/pkg/types"
)

// K8sArgs are the CNI_ARGS keys a Kubernetes runtime passes for a pod
// sandbox. types.LoadArgs matches keys to fields by name, hence the
// spelling.
type K8sArgs struct {
	types.CommonArgs
	K8S_POD_NAME               types.UnmarshallableString
	K8S_POD_NAMESPACE          types.UnmarshallableString
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString
	K8S_POD_UID                types.UnmarshallableString
}

// ParseArgs loads a CNI_ARGS value such as
// "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p". Keys other than
// the K8sArgs fields are an error unless IgnoreUnknown is set. Errors are a
// *types.Error with code types.ErrInvalidNetworkConfig.
func ParseArgs(cniArgs string) (*K8sArgs, error) {
	var args K8sArgs
	if err := types.LoadArgs(cniArgs, &args); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid CNI_ARGS: "+err.Error(), "")
	}
	return &args, nil
}
