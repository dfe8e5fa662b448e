import { Image, type ImageStyle, type StyleProp, View } from 'react-native';

import { useGatewayImage } from '../hooks/useGatewayImage';

interface Props {
  link: string | null;
  label: string;
  style: StyleProp<ImageStyle>;
  testID?: string;
}

/** An image link returned by the gateway (thumbnail, stored query, heatmap), loaded with the API key. */
export function GatewayImage({ link, label, style, testID }: Props) {
  const source = useGatewayImage(link);
  if (!source) {
    return <View accessible accessibilityRole="image" accessibilityLabel={label} style={style} testID={testID} />;
  }
  return (
    <Image
      accessible
      accessibilityRole="image"
      accessibilityLabel={label}
      source={source}
      style={style}
      resizeMode="cover"
      testID={testID}
    />
  );
}
