package clustertest

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DeploymentReady says whether every replica of Deployment ns/name is
// updated and ready, and if not, how far it is, with its conditions (for
// a test polling it).
func DeploymentReady(ctx context.Context, client kubernetes.Interface, ns, name string) error {
	d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if d.Status.ReadyReplicas < *d.Spec.Replicas || d.Status.UpdatedReplicas < *d.Spec.Replicas {
		return fmt.Errorf("deployment %s/%s: %d of %d ready: %v", ns, name, d.Status.ReadyReplicas, *d.Spec.Replicas, conditions(d))
	}
	return nil
}

func conditions(d *appsv1.Deployment) []string {
	var out []string
	for _, c := range d.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s (%s)", c.Type, c.Status, c.Message))
	}
	return out
}
