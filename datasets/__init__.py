"""Data for dlcore: IDX files, MNIST and Fashion-MNIST, the bundled 5,000 digits, image patches."""
