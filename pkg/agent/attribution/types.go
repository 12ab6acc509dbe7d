package attribution

// PodRef names the pod, and where known the container, that a GPU or a GPU
// process is attributed to.
//
// Which fields are set depends on the source: the kubelet PodResources API
// reports namespace, name and container but not the pod UID, so a PodRef from
// PodResourcesClient has an empty UID; a PodRef from PodIndex always has the
// UID, and has Container empty when the process's container could not be
// matched to one of the pod's container statuses.
type PodRef struct {
	// Namespace is the pod's namespace.
	Namespace string
	// Name is the pod's name.
	Name string
	// Container is the name of the container in the pod, or empty if unknown.
	Container string
	// UID is the pod's metadata.uid, or empty if the source does not report it.
	UID string
}
