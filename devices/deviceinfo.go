package devices

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
)

// DefaultInfoDir is the NPWG device-info spec's directory. Device plugins
// write under dp/, CNI plugins and braid under cni/.
const DefaultInfoDir = "/var/run/k8s.cni.cncf.io/devinfo"

// InfoDir names device-info files under a base directory (DefaultInfoDir
// when empty). The NAD client's helpers read and write them, but fix the
// base directory; braid's is configurable so that tests need no /var/run.
type InfoDir string

// Path is the base directory.
func (d InfoDir) Path() string {
	if d == "" {
		return DefaultInfoDir
	}
	return string(d)
}

// PluginFile is the device plugin's file for a device, named as the spec
// says: <resource>-<deviceID>-device.json, "/" replaced by "-".
func (d InfoDir) PluginFile(resource, id string) string {
	return filepath.Join(d.Path(), "dp", fmt.Sprintf("%s-%s-device.json", dashes(resource), dashes(id)))
}

// CNIFile is the file braid hands a delegate as CNIDeviceInfoFile. The spec
// leaves its name open; braid's is unique per network, container and
// interface.
func (d InfoDir) CNIFile(network, containerID, ifName string) string {
	return filepath.Join(d.Path(), "cni", fmt.Sprintf("%s-%s-%s-device.json", dashes(network), containerID, ifName))
}

func dashes(s string) string { return strings.ReplaceAll(s, "/", "-") }

// Prepare puts a copy of the device plugin's file at cniFile, as the spec
// asks, replacing a file braid left there before. No device plugin file is
// not an error: the delegate may write cniFile itself.
func Prepare(pluginFile, cniFile string) error {
	info, err := Load(pluginFile)
	if err != nil || info == nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cniFile), 0o755); err != nil {
		return fmt.Errorf("device-info: %w", err)
	}
	if err := Remove(cniFile); err != nil {
		return err
	}
	if err := nadutils.SaveDeviceInfoForCNI(cniFile, info); err != nil {
		return fmt.Errorf("device-info %s: %w", cniFile, err)
	}
	return nil
}

// Load reads a device-info file; nil, nil when there is none.
func Load(path string) (*nadv1.DeviceInfo, error) {
	info, err := nadutils.LoadDeviceInfoFromCNI(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("device-info %s: %w", path, err)
	}
	return info, nil
}

// Remove removes a device-info file braid wrote; a missing one is fine.
func Remove(path string) error {
	if err := nadutils.CleanDeviceInfoForCNI(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove device-info %s: %w", path, err)
	}
	return nil
}
