package ctl

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDoctorCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "not built yet",
		RunE: func(*cobra.Command, []string) error {
			_ = o
			return errors.New("doctor: not built yet")
		},
	}
}
