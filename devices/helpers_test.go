package devices

import k8stypes "k8s.io/apimachinery/pkg/types"

func typesUID(s string) k8stypes.UID { return k8stypes.UID(s) }
