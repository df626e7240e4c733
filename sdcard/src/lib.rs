//! MBR + FAT32 SD card images, partition placement, sparse output.
