module k8slab.local/pause

go 1.22
